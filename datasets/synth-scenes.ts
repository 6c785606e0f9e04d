/**
 * Scenes for the synthetic DOWNSTREAM datasets (datasets/synth-downstream.ts): the pretraining concepts of
 * datasets/synth-concepts.ts, unchanged (same shape, colour, motion, pitch, timbre, rhythm, words), shown with
 * nuisance variation so that low-level statistics do not give the class away:
 *
 *   - background: a random colour over most of the RGB cube, a random gradient and a static value-noise texture,
 *     so a video's mean colour is mostly its background;
 *   - objects: random size (x0.85-1.2, always larger than any clutter), position jitter, speed and phase, left/right order of a pair;
 *   - clutter: 4-6 shapes about half an object's size (together about as much area as the objects), each a
 *     concept's SHAPE in ANOTHER concept's COLOUR, drifting slowly: every concept colour and every concept shape
 *     shows up in videos of every class, so only the binding of shape, colour and motion (what pretraining
 *     taught: a concept is always its own shape, colour and motion at once) names a concept;
 *   - sound: each object's tone at a random gain, pitch (+-3 %) and rhythm phase; a quieter distractor tone
 *     (another concept, -12 dB) in audio-only clips; white and brown noise at a random level.
 *
 * Classes are PAIRS of concepts on a cycle: class i = {order[i], order[i+1 mod 8]}. Every concept belongs to
 * exactly two classes, so no single cue (one colour, one shape, one pitch) separates a class from its two
 * neighbours; a representation that knows which concepts are present separates them linearly (the class's two
 * concepts both present). Everything is pure: the same rng gives the same scene.
 */
import type { Random } from "../core/random.js";
import { CONCEPTS, type Concept, FILLER_WORDS, fillShape, type Shape } from "./synth-concepts.js";

/** A class of a downstream dataset: the concepts (indices into CONCEPTS) every one of its videos shows. */
export interface SceneClass {
  concepts: number[];
}

/** Class i = {order[i], order[(i + 1) % n]}: a cycle, so each concept is in exactly two classes. */
export function pairCycleClasses(order: readonly number[]): SceneClass[] {
  const seen = new Set(order);
  if (seen.size !== order.length || order.some((c) => !(c >= 0 && c < CONCEPTS.length))) {
    throw new Error(`pairCycleClasses: the order must list distinct concept indices, got ${order.join(",")}`);
  }
  return order.map((c, i) => ({ concepts: [c, order[(i + 1) % order.length]] }));
}

/** One concept's object in a scene, visible (and audible) during [start, end). */
export interface SceneObject {
  concept: number;
  start: number;
  end: number;
  /** Centre in units of the frame. */
  x: number;
  y: number;
  /** Radius in units of min(width, height). */
  radius: number;
  speed: number;
  phase: number;
  /** Motion amplitude multiplier (smaller when two objects share the frame). */
  amplitude: number;
  /** Sound: gain, pitch/rhythm rate multiplier and time offset. */
  gain: number;
  rate: number;
  offset: number;
}

/** A small shape in a colour that is not its own concept's: seen, never heard. */
export interface ClutterShape {
  shape: Shape;
  color: readonly [number, number, number];
  x: number;
  y: number;
  radius: number;
  /** Drift in frames per second, wrapping around the frame. */
  vx: number;
  vy: number;
}

export interface Scene {
  background: [number, number, number];
  gradient: [number, number, number];
  /** Amplitude of the static texture (0-255 units) and the seed of its noise. */
  texture: number;
  textureSeed: number;
  objects: SceneObject[];
  clutter: ClutterShape[];
  /** Audio: noise levels, and tones heard but not seen (distractors). */
  whiteNoise: number;
  brownNoise: number;
  distractors: SceneObject[];
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** An object for `concept` centred near (x, y), active during [start, end). */
function drawObject(
  concept: number,
  x: number,
  y: number,
  start: number,
  end: number,
  paired: boolean,
  rng: Random,
): SceneObject {
  return {
    concept,
    start,
    end,
    x: x + rng.uniform(-0.06, 0.06),
    y: y + rng.uniform(-0.1, 0.1),
    radius: (paired ? 0.19 : 0.25) * rng.uniform(0.85, 1.2),
    speed: rng.uniform(0.6, 1.5),
    phase: rng.uniform(0, 2 * Math.PI),
    amplitude: paired ? 0.7 : 1,
    gain: rng.uniform(0.6, 1),
    rate: rng.uniform(0.97, 1.03),
    offset: rng.uniform(0, 2),
  };
}

/** The objects for one stretch of time showing `concepts` (one in the middle, two side by side in random order). */
export function drawObjects(
  concepts: readonly number[],
  start: number,
  end: number,
  rng: Random,
): SceneObject[] {
  if (concepts.length === 1) return [drawObject(concepts[0], 0.5, 0.5, start, end, false, rng)];
  const flip = rng.bernoulli(0.5);
  return concepts.map((c, i) => {
    const slot = concepts.length === 2 ? ((i === 0) !== flip ? 0.3 : 0.7) : (i + 0.5) / concepts.length;
    return drawObject(c, slot, 0.5, start, end, true, rng);
  });
}

/** A scene of random nuisance around the given objects; `audioDistractor` adds a quiet tone of another concept. */
export function drawScene(
  objects: SceneObject[],
  duration: number,
  rng: Random,
  opts: { audioDistractor?: boolean } = {},
): Scene {
  const base = (): number => 10 + rng.int(160);
  const clutter: ClutterShape[] = [];
  const count = 4 + rng.int(3);
  for (let i = 0; i < count; i++) {
    const shapeOf = rng.int(CONCEPTS.length);
    const colourOf = (shapeOf + 1 + rng.int(CONCEPTS.length - 1)) % CONCEPTS.length; // never its own colour
    clutter.push({
      shape: CONCEPTS[shapeOf].shape,
      color: CONCEPTS[colourOf].color,
      x: rng.next(),
      y: rng.next(),
      radius: rng.uniform(0.09, 0.15),
      vx: rng.uniform(-0.08, 0.08),
      vy: rng.uniform(-0.05, 0.05),
    });
  }
  const present = new Set(objects.map((o) => o.concept));
  const distractors: SceneObject[] = [];
  if (opts.audioDistractor) {
    const others = CONCEPTS.map((_, i) => i).filter((i) => !present.has(i));
    const concept = others[rng.int(others.length)];
    distractors.push({
      ...drawObject(concept, 0.5, 0.5, 0, duration, false, rng),
      gain: rng.uniform(0.2, 0.3),
    });
  }
  return {
    background: [base(), base(), base()],
    gradient: [rng.int(81) - 40, rng.int(81) - 40, rng.int(81) - 40],
    texture: rng.uniform(5, 30),
    textureSeed: rng.nextUint32(),
    objects,
    clutter,
    whiteNoise: round3(rng.uniform(0.01, 0.06)),
    brownNoise: round3(rng.uniform(0, 0.1)),
    distractors,
  };
}

/** Integer hash noise in [0, 1) for a lattice point: the texture's random values, free of any rng state. */
function latticeNoise(seed: number, x: number, y: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** The static background of a scene: colour, vertical gradient and a bilinear value-noise texture (8 px cells). */
export function renderSceneBackground(scene: Scene, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const cell = 8;
  const gw = Math.floor(width / cell) + 2;
  const gh = Math.floor(height / cell) + 2;
  const lattice = new Float64Array(gw * gh);
  for (let gy = 0; gy < gh; gy++) {
    for (let gx = 0; gx < gw; gx++) lattice[gy * gw + gx] = latticeNoise(scene.textureSeed, gx, gy);
  }
  for (let y = 0; y < height; y++) {
    const f = y / Math.max(1, height - 1);
    const row = Math.floor(y / cell) * gw;
    const fy = (y % cell) / cell;
    for (let x = 0; x < width; x++) {
      const g = row + Math.floor(x / cell);
      const fx = (x % cell) / cell;
      const n =
        (1 - fy) * ((1 - fx) * lattice[g] + fx * lattice[g + 1]) +
        fy * ((1 - fx) * lattice[g + gw] + fx * lattice[g + gw + 1]);
      const grain = scene.texture * (2 * n - 1);
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        out[o + c] = Math.max(0, Math.min(255, scene.background[c] + f * scene.gradient[c] + grain));
      }
    }
  }
  return out;
}

/** Centre (units of the frame) and size multiplier of an object at time t, by its concept's motion. */
function objectPlacement(
  o: SceneObject,
  motion: Concept["motion"],
  t: number,
): { x: number; y: number; scale: number } {
  const w = 2 * Math.PI * 0.5 * o.speed * t + o.phase;
  const a = o.amplitude;
  switch (motion) {
    case "bounce":
      return { x: o.x, y: o.y + a * (0.25 * Math.abs(Math.sin(w)) - 0.125), scale: 1 };
    case "slide":
      return { x: o.x + a * 0.2 * Math.sin(w), y: o.y, scale: 1 };
    case "orbit":
      return { x: o.x + a * 0.18 * Math.cos(w), y: o.y + a * 0.18 * Math.sin(w), scale: 1 };
    case "pulse":
      return { x: o.x, y: o.y, scale: 0.75 + 0.35 * Math.sin(2 * w) };
  }
}

const wrap = (v: number): number => v - Math.floor(v);

/** Draws the scene at time t into `out` (height x width x 3 RGB): background, clutter, then the active objects. */
export function renderSceneFrame(
  out: Uint8Array,
  background: Uint8Array,
  width: number,
  height: number,
  scene: Scene,
  t: number,
): void {
  out.set(background);
  const side = Math.min(width, height);
  for (const c of scene.clutter) {
    const x = wrap(c.x + c.vx * t) * width;
    const y = wrap(c.y + c.vy * t) * height;
    fillShape(out, width, height, c.shape, c.color, x, y, c.radius * side);
  }
  for (const o of scene.objects) {
    if (t < o.start || t >= o.end) continue;
    const concept = CONCEPTS[o.concept];
    const p = objectPlacement(o, concept.motion, t);
    fillShape(
      out,
      width,
      height,
      concept.shape,
      concept.color,
      p.x * width,
      p.y * height,
      o.radius * side * p.scale,
    );
  }
}

/**
 * Adds one voice into `out`: exactly `gain * conceptSample([concept], (t + offset) * rate)` for t in [start, end),
 * computed with rotating phasors (one complex multiply per sample instead of five sines: 5 s of 44.1 kHz audio
 * costs milliseconds).
 */
export function addVoice(out: Float32Array, v: SceneObject, sampleRate: number): void {
  const c = CONCEPTS[v.concept];
  const first = Math.max(0, Math.ceil(v.start * sampleRate));
  const last = Math.min(out.length, Math.ceil(v.end * sampleRate));
  if (first >= last) return;
  const norm = c.harmonics.reduce((a, h) => a + Math.abs(h), 0);
  const [h1, h2, h3, h4] = [0, 1, 2, 3].map((h) => (c.harmonics[h] ?? 0) / norm);
  const tau0 = (first / sampleRate + v.offset) * v.rate;
  const step = v.rate / sampleRate;
  // Carrier phasor at w = 2 pi pitch tau, and the envelope's at pi * beats * tau.
  const dw = 2 * Math.PI * c.pitch * step;
  const [cosDw, sinDw] = [Math.cos(dw), Math.sin(dw)];
  const de = Math.PI * c.beatsPerSecond * step;
  const [cosDe, sinDe] = [Math.cos(de), Math.sin(de)];
  let cw = Math.cos(2 * Math.PI * c.pitch * tau0);
  let sw = Math.sin(2 * Math.PI * c.pitch * tau0);
  let ce = Math.cos(Math.PI * c.beatsPerSecond * tau0);
  let se = Math.sin(Math.PI * c.beatsPerSecond * tau0);
  const scale = 0.5 * v.gain;
  for (let i = first; i < last; i++) {
    // sin(k w) by the Chebyshev recurrence sin((k+1)w) = 2 cos(w) sin(kw) - sin((k-1)w).
    const s2 = 2 * cw * sw;
    const s3 = 2 * cw * s2 - sw;
    const s4 = 2 * cw * s3 - s2;
    const tone = h1 * sw + h2 * s2 + h3 * s3 + h4 * s4;
    const envelope = c.beatsPerSecond > 0 ? (se > 0 ? 0.35 + 0.65 * se * se : 0.35) : 1;
    out[i] += scale * tone * envelope;
    const nc = cw * cosDw - sw * sinDw;
    sw = sw * cosDw + cw * sinDw;
    cw = nc;
    const ne = ce * cosDe - se * sinDe;
    se = se * cosDe + ce * sinDe;
    ce = ne;
  }
}

/** Mono audio of a scene: every object's tone (and the distractors') at its gain, plus white and brown noise. */
export function renderSceneAudio(
  scene: Scene,
  duration: number,
  sampleRate: number,
  rng: Random,
): Float32Array {
  const voices = new Float32Array(Math.round(duration * sampleRate));
  for (const v of [...scene.objects, ...scene.distractors]) addVoice(voices, v, sampleRate);
  const out = new Float32Array(voices.length);
  let brown = 0;
  // The noise comes from an inline xorshift32 seeded by the rng: a method call per sample would cost more than
  // all the tones together.
  let state = rng.nextUint32() | 1;
  for (let i = 0; i < out.length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const white = (state >>> 0) / 2147483648 - 1;
    brown = 0.995 * brown + 0.05 * white;
    out[i] = Math.max(-1, Math.min(1, 0.8 * voices[i] + scene.whiteNoise * white + scene.brownNoise * brown));
  }
  return out;
}

/** Mean RGB of a frame: what a colour-only classifier would see. */
export function meanColour(frame: Uint8Array): [number, number, number] {
  const sum = [0, 0, 0];
  for (let i = 0; i < frame.length; i += 3) {
    sum[0] += frame[i];
    sum[1] += frame[i + 1];
    sum[2] += frame[i + 2];
  }
  const n = frame.length / 3;
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}

const SENTENCE_TEMPLATES: readonly ((a: string, b?: string) => string)[] = [
  (a, b) => (b ? `a person shows the ${a} and the ${b}` : `a person shows the ${a}`),
  (a, b) => (b ? `someone is working with ${a} next to ${b}` : `someone is working with ${a}`),
  (a, b) => (b ? `a video of ${a} and ${b} on a table` : `a video of ${a} on a table`),
  (a, b) => (b ? `here we see ${a} then ${b}` : `here we see ${a} up close`),
];

/** A describing sentence naming each concept by one of its words (MSR-VTT / YouCook2 style, lower case). */
export function sceneSentence(concepts: readonly number[], rng: Random): string {
  const word = (c: number) => {
    const words = CONCEPTS[c].words;
    return words[rng.int(words.length)];
  };
  const template = SENTENCE_TEMPLATES[rng.int(SENTENCE_TEMPLATES.length)];
  const sentence = template(word(concepts[0]), concepts.length > 1 ? word(concepts[1]) : undefined);
  return rng.bernoulli(0.3) ? `${FILLER_WORDS[rng.int(FILLER_WORDS.length)]} ${sentence}` : sentence;
}

/** A clip's objects (a class's pair, or any concepts, for the whole clip or `active`) in a scene of its own nuisance. */
export function clipScene(
  concepts: readonly number[],
  duration: number,
  rng: Random,
  opts: { look?: Scene; audioDistractor?: boolean; active?: [number, number] } = {},
): Scene {
  const [start, end] = opts.active ?? [0, duration];
  const scene = drawScene(
    drawObjects(concepts, start, end, rng.fork("objects")),
    duration,
    rng.fork("scene"),
    {
      audioDistractor: opts.audioDistractor,
    },
  );
  if (!opts.look) return scene;
  const { background, gradient, texture, textureSeed } = opts.look;
  return { ...scene, background, gradient, texture, textureSeed };
}
