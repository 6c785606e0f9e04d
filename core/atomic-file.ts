/**
 * Whole-file writes that a crash or a full disk cannot leave half done: the text goes to a temporary file beside
 * the target, which is renamed over it (rename is atomic within a file system). Either the old file or the new one
 * is there, never a truncated mix; a failed write removes its temporary file.
 */
import { rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export async function writeFileAtomic(file: string, text: string | Uint8Array): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
  try {
    await writeFile(temporary, text);
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => {});
    throw err;
  }
}
