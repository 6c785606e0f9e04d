/**
 * The content of the synthetic datasets: a fixed set of concepts, each with a visual signature (shape, colour,
 * motion drawn into the frames), an audio signature (pitch, timbre, rhythm) and words. A model that learns
 * video-audio and video-text correspondence can find it here; one that learns nothing cannot, because the only
 * link between the modalities is which concept is on screen.
 *
 * Everything is pure: frames and samples are computed from (concept, time, a per-video style), so the same seed
 * always gives the same media.
 */
import type { Random } from "../core/random.js";

export type Shape = "disc" | "square" | "triangle" | "diamond" | "ring" | "cross" | "hbar" | "vbar";
export type Motion = "bounce" | "slide" | "orbit" | "pulse";

export interface Concept {
  /** The words ASR would hear when this concept is on screen; the first is its name. */
  words: readonly string[];
  shape: Shape;
  /** RGB 0-255. */
  color: readonly [number, number, number];
  motion: Motion;
  /** Fundamental frequency of its sound in Hz. */
  pitch: number;
  /** Weights of harmonics 1..4: the timbre. */
  harmonics: readonly number[];
  /** Amplitude pulses per second: the rhythm. */
  beatsPerSecond: number;
}

export const CONCEPTS: readonly Concept[] = [
  {
    words: ["tomato", "slice", "cut"],
    shape: "disc",
    color: [220, 40, 40],
    motion: "bounce",
    pitch: 262,
    harmonics: [1, 0, 0, 0],
    beatsPerSecond: 2,
  },
  {
    words: ["whisk", "eggs", "beat"],
    shape: "ring",
    color: [240, 200, 40],
    motion: "orbit",
    pitch: 330,
    harmonics: [1, 0.5, 0.25, 0],
    beatsPerSecond: 6,
  },
  {
    words: ["hammer", "nail", "wood"],
    shape: "square",
    color: [140, 90, 50],
    motion: "slide",
    pitch: 196,
    harmonics: [1, 0, 0.6, 0],
    beatsPerSecond: 3,
  },
  {
    words: ["drill", "screw", "wall"],
    shape: "cross",
    color: [60, 60, 220],
    motion: "pulse",
    pitch: 523,
    harmonics: [1, 0.8, 0, 0.4],
    beatsPerSecond: 0,
  },
  {
    words: ["guitar", "strum", "chord"],
    shape: "triangle",
    color: [40, 180, 60],
    motion: "bounce",
    pitch: 392,
    harmonics: [1, 0.3, 0.3, 0.3],
    beatsPerSecond: 1,
  },
  {
    words: ["paint", "brush", "wall"],
    shape: "hbar",
    color: [200, 60, 200],
    motion: "slide",
    pitch: 440,
    harmonics: [1, 0, 0, 0.7],
    beatsPerSecond: 4,
  },
  {
    words: ["dough", "knead", "flour"],
    shape: "diamond",
    color: [240, 240, 230],
    motion: "pulse",
    pitch: 294,
    harmonics: [1, 0.6, 0, 0],
    beatsPerSecond: 1.5,
  },
  {
    words: ["water", "pour", "glass"],
    shape: "vbar",
    color: [40, 200, 220],
    motion: "orbit",
    pitch: 659,
    harmonics: [1, 0, 0.2, 0],
    beatsPerSecond: 0,
  },
];

/** Words ASR transcripts are full of, carrying no concept. */
export const FILLER_WORDS: readonly string[] = [
  "so",
  "now",
  "we",
  "are",
  "going",
  "to",
  "the",
  "and",
  "just",
  "okay",
  "right",
  "you",
  "can",
  "see",
  "here",
  "this",
  "is",
  "a",
  "little",
  "bit",
  "of",
  "then",
  "um",
  "uh",
  "gonna",
  "let's",
  "it",
  "like",
  "that",
  "really",
];

/** Per-video look: where the background sits and how things move, so no two videos are pixel-identical. */
export interface VideoStyle {
  background: [number, number, number];
  backgroundGradient: [number, number, number];
  phase: number;
  speed: number;
  size: number;
}

export function drawStyle(rng: Random): VideoStyle {
  const base = (): number => 20 + rng.int(60);
  return {
    background: [base(), base(), base()],
    backgroundGradient: [rng.int(40), rng.int(40), rng.int(40)],
    phase: rng.uniform(0, 2 * Math.PI),
    speed: rng.uniform(0.7, 1.3),
    size: rng.uniform(0.22, 0.32),
  };
}

/** Shape centre (in units of the frame) and size multiplier at time t. */
function placement(
  motion: Motion,
  t: number,
  style: VideoStyle,
  slot: number,
): { x: number; y: number; scale: number } {
  const w = 2 * Math.PI * 0.5 * style.speed * t + style.phase;
  const cx = slot === 0 ? 0.5 : slot === 1 ? 0.3 : 0.7;
  switch (motion) {
    case "bounce":
      return { x: cx, y: 0.5 + 0.25 * Math.abs(Math.sin(w)) - 0.125, scale: 1 };
    case "slide":
      return { x: cx + 0.2 * Math.sin(w), y: 0.5, scale: 1 };
    case "orbit":
      return { x: cx + 0.18 * Math.cos(w), y: 0.5 + 0.18 * Math.sin(w), scale: 1 };
    case "pulse":
      return { x: cx, y: 0.5, scale: 0.75 + 0.35 * Math.sin(2 * w) };
  }
}

/** Whether the point (u, v), relative to the shape centre in units of its radius, lies inside the shape. */
function inside(shape: Shape, u: number, v: number): boolean {
  const au = Math.abs(u);
  const av = Math.abs(v);
  switch (shape) {
    case "disc":
      return u * u + v * v <= 1;
    case "ring": {
      const r2 = u * u + v * v;
      return r2 <= 1 && r2 >= 0.45;
    }
    case "square":
      return au <= 0.8 && av <= 0.8;
    case "diamond":
      return au + av <= 1;
    case "triangle":
      return v <= 0.8 && v >= -0.9 && au <= (v + 0.9) * 0.6;
    case "cross":
      return (au <= 0.3 && av <= 1) || (av <= 0.3 && au <= 1);
    case "hbar":
      return au <= 1 && av <= 0.35;
    case "vbar":
      return au <= 0.35 && av <= 1;
  }
}

/** Fills `out` (height x width x 3, RGB) with the background of a video. */
export function renderBackground(out: Uint8Array, width: number, height: number, style: VideoStyle): void {
  for (let y = 0; y < height; y++) {
    const f = y / Math.max(1, height - 1);
    const r = style.background[0] + f * style.backgroundGradient[0];
    const g = style.background[1] + f * style.backgroundGradient[1];
    const b = style.background[2] + f * style.backgroundGradient[2];
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      out[o] = r;
      out[o + 1] = g;
      out[o + 2] = b;
    }
  }
}

/**
 * Draws one frame at time t: the background, then each concept on screen (one, or two side by side), then a
 * small grey distractor that moves on its own and belongs to no concept.
 */
export function renderFrame(
  out: Uint8Array,
  background: Uint8Array,
  width: number,
  height: number,
  concepts: readonly Concept[],
  t: number,
  style: VideoStyle,
): void {
  out.set(background);
  concepts.forEach((concept, i) => {
    const slot = concepts.length === 1 ? 0 : i + 1;
    const { x, y, scale } = placement(concept.motion, t, style, slot);
    const radius = style.size * Math.min(width, height) * scale * (concepts.length > 1 ? 0.7 : 1);
    fillShape(out, width, height, concept.shape, concept.color, x * width, y * height, radius);
  });
  const dx = 0.5 + 0.45 * Math.sin(0.9 * t + style.phase * 2);
  const dy = 0.12 + 0.05 * Math.cos(1.3 * t);
  fillShape(
    out,
    width,
    height,
    "square",
    [128, 128, 128],
    dx * width,
    dy * height,
    Math.min(width, height) * 0.05,
  );
}

export function fillShape(
  out: Uint8Array,
  width: number,
  height: number,
  shape: Shape,
  color: readonly [number, number, number],
  cx: number,
  cy: number,
  radius: number,
): void {
  const x0 = Math.max(0, Math.floor(cx - radius));
  const x1 = Math.min(width - 1, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius));
  const y1 = Math.min(height - 1, Math.ceil(cy + radius));
  const inv = 1 / radius;
  for (let y = y0; y <= y1; y++) {
    const v = (y + 0.5 - cy) * inv;
    for (let x = x0; x <= x1; x++) {
      if (!inside(shape, (x + 0.5 - cx) * inv, v)) continue;
      const o = (y * width + x) * 3;
      out[o] = color[0];
      out[o + 1] = color[1];
      out[o + 2] = color[2];
    }
  }
}

/** The concepts sounding at one instant, mixed: each concept's tone with its timbre and rhythm. */
export function conceptSample(concepts: readonly Concept[], t: number): number {
  let sum = 0;
  for (const c of concepts) {
    let tone = 0;
    let norm = 0;
    const w = 2 * Math.PI * c.pitch * t;
    for (let h = 0; h < c.harmonics.length; h++) {
      const weight = c.harmonics[h];
      if (weight === 0) continue;
      tone += weight * Math.sin(w * (h + 1));
      norm += Math.abs(weight);
    }
    let envelope = 1;
    if (c.beatsPerSecond > 0) {
      const pulse = Math.sin(Math.PI * c.beatsPerSecond * t);
      envelope = pulse > 0 ? 0.35 + 0.65 * pulse * pulse : 0.35;
    }
    sum += (tone / norm) * envelope;
  }
  return concepts.length > 0 ? (0.5 * sum) / concepts.length : 0;
}

/**
 * Renders mono audio for a timeline of concepts: `segments` says which concepts sound when. A little noise is
 * added everywhere, as any recording has.
 */
export function renderAudio(
  segments: readonly { start: number; end: number; concepts: readonly Concept[] }[],
  duration: number,
  sampleRate: number,
  rng: Random,
): Float32Array {
  const out = new Float32Array(Math.round(duration * sampleRate));
  let s = 0;
  for (let i = 0; i < out.length; i++) {
    const t = i / sampleRate;
    while (s < segments.length - 1 && t >= segments[s].end) s++;
    const seg = segments[s];
    const active = seg && t >= seg.start && t < seg.end ? seg.concepts : [];
    out[i] = conceptSample(active, t) + 0.02 * (rng.next() * 2 - 1);
  }
  return out;
}

/** A caption the way ASR writes it: the concept's words among filler, sometimes only filler. */
export function captionText(concept: Concept | undefined, rng: Random): string {
  const words: string[] = [];
  const fillers = 1 + rng.int(4);
  for (let i = 0; i < fillers; i++) words.push(FILLER_WORDS[rng.int(FILLER_WORDS.length)]);
  if (concept) {
    const named = 1 + rng.int(2);
    for (let i = 0; i < named; i++) {
      words.splice(rng.int(words.length + 1), 0, concept.words[rng.int(concept.words.length)]);
    }
  }
  return words.join(" ");
}
