/**
 * The run directory's checkpoints: one folder per checkpoint, `checkpoints/step-000100/`, written under a temporary
 * name and renamed into place when complete. A folder rename is atomic, so a process killed at any moment (even
 * SIGKILL mid-write) leaves either the finished checkpoint or none, and the previous one stays loadable. The last
 * `keep` are kept.
 */
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";

const FOLDER = /^step-(\d{9})$/;

export function checkpointsDir(runDir: string): string {
  return join(runDir, "checkpoints");
}

export function checkpointFolderName(step: number): string {
  return `step-${String(step).padStart(9, "0")}`;
}

/** Finished checkpoints of a run, oldest first. */
export async function listCheckpoints(runDir: string): Promise<{ step: number; dir: string }[]> {
  let names: string[];
  try {
    names = await readdir(checkpointsDir(runDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names
    .map((name) => ({ name, m: FOLDER.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map(({ name, m }) => ({ step: Number(m[1]), dir: join(checkpointsDir(runDir), name) }))
    .sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(runDir: string): Promise<{ step: number; dir: string } | undefined> {
  return (await listCheckpoints(runDir)).at(-1);
}

/** A checkpoint that could not be written: says why and that the previous one is intact. */
export class CheckpointWriteError extends Error {
  constructor(step: number, runDir: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === "ENOSPC"
        ? "the disk is full"
        : code === "EACCES" || code === "EPERM" || code === "EROFS"
          ? "no permission to write there"
          : (cause as Error).message;
    super(
      `could not write the checkpoint of step ${step} in '${checkpointsDir(runDir)}': ${why}. ` +
        "The previous checkpoint is intact; free space or fix permissions and training will checkpoint again.",
    );
    this.name = "CheckpointWriteError";
  }
}

/**
 * Writes a checkpoint: `write(dir)` fills a temporary folder, which is then renamed to its final name; older
 * checkpoints beyond `keep` are removed. On failure the temporary folder is removed and a CheckpointWriteError
 * thrown; nothing finished is touched.
 */
export async function saveCheckpointFolder(
  runDir: string,
  step: number,
  keep: number,
  write: (dir: string) => Promise<void>,
): Promise<string> {
  const root = checkpointsDir(runDir);
  const final = join(root, checkpointFolderName(step));
  const temporary = join(root, `.partial-${checkpointFolderName(step)}-${process.pid}`);
  try {
    await mkdir(root, { recursive: true });
    await rm(temporary, { recursive: true, force: true });
    await mkdir(temporary);
    await write(temporary);
    // Re-saving the same step (e.g. on SIGINT right after a periodic save) replaces it.
    if (await stat(final).catch(() => undefined)) await rm(final, { recursive: true, force: true });
    await rename(temporary, final);
  } catch (err) {
    await rm(temporary, { recursive: true, force: true }).catch(() => {});
    throw new CheckpointWriteError(step, runDir, err);
  }
  const all = await listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) {
    await rm(old.dir, { recursive: true, force: true });
  }
  await removeStalePartials(root);
  return final;
}

/** Temporary folders left by killed processes. */
async function removeStalePartials(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    if (!name.startsWith(".partial-")) continue;
    const pid = Number(name.split("-").at(-1));
    if (pid === process.pid) continue;
    if (Number.isInteger(pid) && isAlive(pid)) continue;
    await rm(join(root, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The model file a --checkpoint names, and the run directory around it (for vocab.txt and the config). */
export async function resolveCheckpoint(path: string): Promise<{ file: string; runDir: string }> {
  const info = await stat(path).catch(() => undefined);
  if (!info)
    throw new Error(
      `checkpoint '${path}' does not exist: give a run directory, a checkpoint folder or a .safetensors file`,
    );
  if (info.isFile()) return { file: path, runDir: dirname(dirname(dirname(path))) };
  if ((await stat(join(path, "model.safetensors")).catch(() => undefined))?.isFile())
    return { file: join(path, "model.safetensors"), runDir: dirname(dirname(path)) };
  const last = await latestCheckpoint(path);
  if (!last)
    throw new Error(
      `'${path}' holds no checkpoint: give a run directory with checkpoints/, or a checkpoint folder`,
    );
  return { file: join(last.dir, "model.safetensors"), runDir: path };
}
