// Renders the app icons of public/icons/ (PNG, for the manifest and iOS) from icon.svg with
// headless Chromium: `node scripts/render-icons.mjs` after changing the SVG (it borrows the
// browser tests' Chromium helper, so run `npm ci` in tests/js once first).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from '../tests/js/helpers/server.mjs';
import { launch } from '../tests/js/helpers/browser.mjs';

const dir = path.join(REPO, 'public', 'icons');
const svg = await readFile(path.join(dir, 'icon.svg'), 'utf8');
// Maskable icons are cropped to a circle of 80% of their width by some launchers: full
// bleed background, the drawing shrunk into that circle.
const maskable = svg
  .replace(/rx="\d+"/, '')
  .replace(/<g fill/, '<g transform="translate(256 256) scale(.7) translate(-256 -256)"><g fill')
  .replace('</svg>', '</g></svg>');

const icons = [
  ['icon-192.png', svg, 192],
  ['icon-512.png', svg, 512],
  ['maskable-512.png', maskable, 512],
  ['apple-touch-icon.png', maskable, 180],
];
const browser = await launch();
try {
  for (const [name, source, size] of icons) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    const src = `data:image/svg+xml;base64,${Buffer.from(source).toString('base64')}`;
    await page.setContent(`<style>html,body{margin:0}</style><img src="${src}" width="${size}" height="${size}">`);
    await page.locator('img').evaluate((img) => img.decode());
    await page.screenshot({ path: path.join(dir, name), omitBackground: true });
    await page.close();
  }
} finally {
  await browser.close();
}
