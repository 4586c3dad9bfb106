// Light, dark, or the system's choice (prefers-color-scheme), kept in localStorage and set as
// <html data-theme> (styles.css holds both palettes).

export type Theme = 'system' | 'light' | 'dark';
const KEY = 'imd.theme';
const ORDER: Theme[] = ['system', 'light', 'dark'];

export function theme(): Theme {
  try {
    const t = localStorage.getItem(KEY);
    return t === 'light' || t === 'dark' ? t : 'system';
  } catch {
    return 'system';
  }
}

export function applyTheme(t: Theme = theme()): void {
  if (t === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

export function setTheme(t: Theme): Theme {
  try {
    if (t === 'system') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, t);
  } catch {
    // storage blocked: this page only
  }
  applyTheme(t);
  return t;
}

export function nextTheme(t: Theme): Theme {
  return ORDER[(ORDER.indexOf(t) + 1) % ORDER.length];
}
