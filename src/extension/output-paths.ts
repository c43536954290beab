// Free output paths beside a taken one: `x-2.onnx`, or a TF.js model's folder `x-2/model.json`.

import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function uniquePath(p: string, onnx: boolean): string {
  if (onnx) {
    for (let i = 2; ; i++) {
      const c = p.replace(/\.onnx$/i, `-${i}.onnx`);
      if (!existsSync(c)) return c;
    }
  }
  const dir = dirname(p);
  for (let i = 2; ; i++) {
    const c = join(`${dir}-${i}`, basename(p));
    if (!existsSync(dirname(c))) return c;
  }
}

/** `p` when free, else the next free path beside it (ONNX: the file; TF.js: its folder). */
export function freeOutputPath(p: string): string {
  const onnx = /\.onnx$/i.test(p);
  return (onnx ? existsSync(p) : existsSync(dirname(p))) ? uniquePath(p, onnx) : p;
}
