// Builds the console into ../$KAA_CONSOLE_OUT (the Makefile passes
// build/console); served by kaa-node at /console/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: process.env.KAA_CONSOLE_OUT || '../build/console',
    emptyOutDir: true,
    // No inline assets: the Content-Security-Policy allows 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: false,
  },
});
