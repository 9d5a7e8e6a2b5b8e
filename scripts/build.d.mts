// Types of scripts/build.mjs, for the tests that build the package or check its options.
import type { BuildOptions, Metafile } from 'esbuild';

export const BUNDLE_FILE: string;
export const ENTRY_POINTS: Readonly<Record<string, string>>;
export function esbuildOptions(outdir: string): BuildOptions & { metafile: true; write: false };
export function bundle(outdir: string): Promise<Metafile>;
export function pruneDeclarations(outdir: string): { kept: number; removed: number };
export function buildPackage(outdir: string): Promise<{
  metafile: Metafile;
  declarations: { kept: number; removed: number };
}>;
