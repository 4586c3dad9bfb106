// Initials avatars: up to two letters from the name, on a colour picked from the user id (the
// same person has the same colour everywhere). Every colour carries white text at WCAG AA
// (contrast >= 4.5:1; checked by web/test/text.test.mjs).

export const AVATAR_COLOURS = [
  '#c92a2a', '#a61e4d', '#862e9c', '#5f3dc4', '#364fc7', '#1864ab',
  '#0b7285', '#087f5b', '#237032', '#5c7b0f', '#b04a00', '#6b5a00',
];

export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const first = (w: string | undefined) => (w ? Array.from(w)[0] : '');
  const letters = words.length > 1 ? first(words[0]) + first(words[words.length - 1]) : Array.from(words[0] ?? '?').slice(0, 2).join('');
  return letters.toUpperCase() || '?';
}

export function avatarColour(id: string): string {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return AVATAR_COLOURS[(h >>> 0) % AVATAR_COLOURS.length];
}

/** WCAG relative luminance of '#rrggbb'. */
export function luminance(hex: string): number {
  const ch = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const lin = ch.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
}

export function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}
