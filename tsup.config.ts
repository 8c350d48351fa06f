import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts', 'demo-child': 'src/demo/child.ts', 'guest-agent': 'src/lab/guest-agent-main.ts' },
  format: ['esm'],
  target: 'node20',
  platform: 'node',
  sourcemap: true,
  clean: true,
  dts: { entry: { index: 'src/index.ts' } },
  splitting: true,
  loader: { '.bt': 'text' },
});
