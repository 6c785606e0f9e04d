/**
 * Demand-driven streams on rxjs: the consumer pulls, every stage is bounded.
 *
 * rxjs pushes: `from(asyncIterable).pipe(mergeMap(decode, 4))` reads the source as fast as it can and queues the
 * values mergeMap cannot start yet, so a 100,000-clip dataset would be read (and held) ahead of a slow trainer.
 * Here the pull is part of the type. A `Pulled<T>` is a stream that is subscribed *with a demand observable*: each
 * number n it emits means "n more values, please", and the stream never emits more than was asked for. Operators
 * (`PullOperator<A, B>`) map a pulled source to a pulled result and decide their own upstream demand:
 *
 *   - `fromIterable` answers demand by calling the iterator's `next()` only then (never reads ahead);
 *   - `mapConcurrent` asks upstream for a value only when one of its `concurrency` slots is free and its output
 *     buffer has room, so at most `concurrency + buffer` values are in flight or waiting at any time;
 *   - `toAsyncIterable` is the consumer's end: each `next()` asks for exactly one value, so a training loop that
 *     takes its next batch only after its step is done drives the whole chain.
 *
 * Unsubscribing (breaking out of the `for await`, or `unsubscribe()`) tears every stage down: in-flight work is
 * aborted through its AbortSignal (the decoders kill their ffmpeg processes) and the source iterator is returned.
 */
import { setMaxListeners } from "node:events";
import { map, Observable, Subject } from "rxjs";

/** A stream that produces values only on request: subscribe with the consumer's demand (n = "n more"). */
export type Pulled<T> = (demand: Observable<number>) => Observable<T>;

/** A stage: from a pulled source to a pulled result. It owns the demand it sends upstream. */
export type PullOperator<A, B> = (source: Pulled<A>) => Pulled<B>;

/** Composes a source with stages, left to right (like rxjs's `pipe`). */
export function flow<A>(source: Pulled<A>): Pulled<A>;
export function flow<A, B>(source: Pulled<A>, op1: PullOperator<A, B>): Pulled<B>;
export function flow<A, B, C>(source: Pulled<A>, op1: PullOperator<A, B>, op2: PullOperator<B, C>): Pulled<C>;
export function flow<A, B, C, D>(
  source: Pulled<A>,
  op1: PullOperator<A, B>,
  op2: PullOperator<B, C>,
  op3: PullOperator<C, D>,
): Pulled<D>;
export function flow<A, B, C, D, E>(
  source: Pulled<A>,
  op1: PullOperator<A, B>,
  op2: PullOperator<B, C>,
  op3: PullOperator<C, D>,
  op4: PullOperator<D, E>,
): Pulled<E>;
export function flow<A, B, C, D, E, F>(
  source: Pulled<A>,
  op1: PullOperator<A, B>,
  op2: PullOperator<B, C>,
  op3: PullOperator<C, D>,
  op4: PullOperator<D, E>,
  op5: PullOperator<E, F>,
): Pulled<F>;
export function flow(source: Pulled<unknown>, ...ops: PullOperator<unknown, unknown>[]): Pulled<unknown> {
  return ops.reduce((acc, op) => op(acc), source);
}

/** A source that calls the iterator's `next()` only to answer demand, one call at a time. */
export function fromIterable<T>(source: AsyncIterable<T> | Iterable<T>): Pulled<T> {
  return (demand) =>
    new Observable<T>((subscriber) => {
      const iterator: AsyncIterator<T> | Iterator<T> =
        Symbol.asyncIterator in source
          ? (source as AsyncIterable<T>)[Symbol.asyncIterator]()
          : (source as Iterable<T>)[Symbol.iterator]();
      let wanted = 0;
      let reading = false;
      let exhausted = false;
      const pump = async () => {
        if (reading) return;
        reading = true;
        try {
          while (wanted > 0 && !subscriber.closed) {
            const step = await iterator.next();
            if (subscriber.closed) return;
            if (step.done) {
              exhausted = true;
              subscriber.complete();
              return;
            }
            wanted -= 1;
            subscriber.next(step.value); // may add demand synchronously: the loop picks it up
          }
        } catch (err) {
          exhausted = true;
          subscriber.error(err);
        } finally {
          reading = false;
        }
      };
      const demandSub = demand.subscribe({
        next: (n) => {
          wanted += n;
          void pump();
        },
        error: (err) => subscriber.error(err),
      });
      return () => {
        demandSub.unsubscribe();
        if (!exhausted) Promise.resolve(iterator.return?.()).catch(() => {});
      };
    });
}

/** A 1:1 synchronous transform (e.g. augmentation): demand passes straight through. */
export function mapEach<A, B>(project: (value: A) => B): PullOperator<A, B> {
  return (source) => (demand) => source(demand).pipe(map(project));
}

export interface ConcurrentOptions<A> {
  /** Values being worked on at once. */
  concurrency: number;
  /** Finished values that may wait for the consumer. In flight + waiting <= concurrency + buffer. */
  buffer: number;
  /**
   * Emit in source order (default true), so a batch holds the same samples whatever the timing. A slow value then
   * holds back finished ones behind it, which still count against the bound.
   */
  ordered?: boolean;
  /**
   * Called when `project` fails. Return to skip the value (the stage asks upstream for a replacement and the
   * stream goes on); throw to end the stream with that error. Default: throw.
   */
  onError?: (err: unknown, value: A) => void;
}

type Settled<B> = { ok: true; value: B } | { ok: false };

/**
 * Runs an async `project` on up to `concurrency` values at once. Takes a new value from upstream only when a slot is
 * free and the output buffer has room; every in-flight call gets an AbortSignal that fires on unsubscribe.
 */
export function mapConcurrent<A, B>(
  project: (value: A, signal: AbortSignal) => Promise<B>,
  opts: ConcurrentOptions<A>,
): PullOperator<A, B> {
  const { concurrency, buffer, ordered = true } = opts;
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new RangeError(`mapConcurrent: concurrency must be an integer >= 1, got ${concurrency}`);
  }
  if (!(Number.isInteger(buffer) && buffer >= 0)) {
    throw new RangeError(`mapConcurrent: buffer must be an integer >= 0, got ${buffer}`);
  }
  return (source) => (demand) =>
    new Observable<B>((subscriber) => {
      const upstreamDemand = new Subject<number>();
      const abort = new AbortController();
      // Every running project listens to this one signal (and may fan out: an evaluation video decodes its 4
      // windows at once), each removing its listener when it settles: more than Node's default 10 is no leak.
      setMaxListeners(0, abort.signal);
      /** Finished results by sequence number; in unordered mode keys are arrival order. */
      const finished = new Map<number, Settled<B>>();
      let nextSeq = 0; // sequence number of the next value taken from upstream
      let emitSeq = 0; // sequence number of the next result to emit (ordered mode)
      let arrivalSeq = 0; // unordered mode: keys in arrival order
      let requested = 0; // asked upstream, not arrived yet
      let inFlight = 0;
      let wanted = 0; // downstream demand not yet served
      let upstreamDone = false;
      let draining = false;
      let drainAgain = false;

      const refill = () => {
        // The bound: in flight + asked-for + finished <= concurrency + buffer, with at most `concurrency` running.
        while (
          !upstreamDone &&
          !subscriber.closed &&
          inFlight + requested < concurrency &&
          inFlight + requested + finished.size < concurrency + buffer
        ) {
          requested += 1;
          upstreamDemand.next(1);
        }
      };

      const drain = () => {
        if (draining) {
          drainAgain = true;
          return;
        }
        draining = true;
        try {
          do {
            drainAgain = false;
            while (
              !subscriber.closed &&
              finished.has(emitSeq) &&
              (wanted > 0 || !finished.get(emitSeq)?.ok)
            ) {
              const settled = finished.get(emitSeq)!;
              finished.delete(emitSeq);
              emitSeq += 1;
              if (settled.ok) {
                wanted -= 1;
                subscriber.next(settled.value);
              }
            }
            refill();
            if (upstreamDone && inFlight === 0 && requested === 0 && finished.size === 0)
              subscriber.complete();
          } while (drainAgain && !subscriber.closed);
        } finally {
          draining = false;
        }
      };

      const settle = (seq: number, result: Settled<B>) => {
        inFlight -= 1;
        finished.set(ordered ? seq : arrivalSeq++, result);
        drain();
      };

      const start = (value: A) => {
        const seq = nextSeq++;
        inFlight += 1;
        let running: Promise<B>;
        try {
          running = project(value, abort.signal);
        } catch (err) {
          running = Promise.reject(err);
        }
        running.then(
          (result) => {
            if (!subscriber.closed) settle(seq, { ok: true, value: result });
          },
          (err) => {
            if (subscriber.closed) return;
            try {
              if (!opts.onError) throw err;
              opts.onError(err, value);
            } catch (fatal) {
              subscriber.error(fatal);
              return;
            }
            settle(seq, { ok: false });
          },
        );
      };

      const upstreamSub = source(upstreamDemand).subscribe({
        next: (value) => {
          requested -= 1;
          start(value);
        },
        error: (err) => subscriber.error(err),
        complete: () => {
          upstreamDone = true;
          requested = 0;
          drain();
        },
      });
      const demandSub = demand.subscribe({
        next: (n) => {
          wanted += n;
          drain();
        },
        error: (err) => subscriber.error(err),
      });
      drain(); // start filling the slots before the first request: that is what the buffer is for
      return () => {
        abort.abort();
        demandSub.unsubscribe();
        upstreamSub.unsubscribe();
      };
    });
}

/** Groups values into arrays of `size`; the last may be shorter unless `dropRemainder`. Demand n asks for n*size. */
export function batchOf<T>(size: number, opts: { dropRemainder?: boolean } = {}): PullOperator<T, T[]> {
  if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`batchOf: size must be >= 1, got ${size}`);
  return (source) => (demand) =>
    new Observable<T[]>((subscriber) => {
      const upstreamDemand = new Subject<number>();
      let group: T[] = [];
      const upstreamSub = source(upstreamDemand).subscribe({
        next: (value) => {
          group.push(value);
          if (group.length === size) {
            const full = group;
            group = [];
            subscriber.next(full);
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => {
          if (group.length > 0 && !opts.dropRemainder) subscriber.next(group);
          subscriber.complete();
        },
      });
      const demandSub = demand.subscribe({
        next: (n) => upstreamDemand.next(n * size),
        error: (err) => subscriber.error(err),
      });
      return () => {
        demandSub.unsubscribe();
        upstreamSub.unsubscribe();
      };
    });
}

/** Ends after `count` values and never asks upstream for more than that. */
export function takeFirst<T>(count: number): PullOperator<T, T> {
  return (source) => (demand) =>
    new Observable<T>((subscriber) => {
      if (count <= 0) {
        subscriber.complete();
        return;
      }
      const upstreamDemand = new Subject<number>();
      let asked = 0;
      let seen = 0;
      const upstreamSub = source(upstreamDemand).subscribe({
        next: (value) => {
          seen += 1;
          subscriber.next(value);
          if (seen >= count) subscriber.complete();
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      const demandSub = demand.subscribe({
        next: (n) => {
          const more = Math.min(n, count - asked);
          asked += more;
          if (more > 0) upstreamDemand.next(more);
        },
        error: (err) => subscriber.error(err),
      });
      return () => {
        demandSub.unsubscribe();
        upstreamSub.unsubscribe();
      };
    });
}

/**
 * The consumer's end: an async iterable whose every `next()` asks the chain for exactly one value. Breaking out of
 * the loop (or `return()`) unsubscribes, which aborts in-flight work upstream.
 */
export async function* toAsyncIterable<T>(source: Pulled<T>): AsyncGenerator<T, void, undefined> {
  const demand = new Subject<number>();
  const arrived: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const subscription = source(demand).subscribe({
    next: (value) => {
      arrived.push(value);
      wake?.();
    },
    error: (error) => {
      failure = { error };
      wake?.();
    },
    complete: () => {
      done = true;
      wake?.();
    },
  });
  try {
    while (true) {
      if (arrived.length === 0 && !done && !failure) {
        const signalled = new Promise<void>((resolve) => {
          wake = resolve;
        });
        demand.next(1);
        if (arrived.length === 0 && !done && !failure) await signalled;
        wake = undefined;
      }
      if (arrived.length > 0) {
        yield arrived.shift()!;
        continue;
      }
      if (failure) throw failure.error;
      return;
    }
  } finally {
    subscription.unsubscribe();
  }
}
