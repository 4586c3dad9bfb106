// Message times, formatted once: Intl formatters built once, and each minute's text cached
// (a bounded map), so rendering a row costs a map lookup.

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const yearDayFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

const MINUTE_MS = 60_000;
const CACHE_MAX = 4096;
const cache = new Map<string, string>();

function cached(key: string, make: () => string): string {
  let v = cache.get(key);
  if (v === undefined) {
    if (cache.size >= CACHE_MAX) cache.clear();
    v = make();
    cache.set(key, v);
  }
  return v;
}

/** The clock time of a message, e.g. "14:05". */
export function clockTime(ms: number): string {
  const minute = Math.floor(ms / MINUTE_MS);
  return cached(`t${minute}`, () => timeFmt.format(minute * MINUTE_MS));
}

/** The local calendar day of `ms` as a number that compares (YYYYMMDD). */
export function dayKey(ms: number): number {
  const d = new Date(ms);
  return d.getFullYear() * 10_000 + (d.getMonth() + 1) * 100 + d.getDate();
}

/** A day separator: "Today", "Yesterday", "Monday, March 3", or with the year when not this one. */
export function dayLabel(ms: number, now = Date.now()): string {
  const day = dayKey(ms);
  const today = dayKey(now);
  if (day === today) return 'Today';
  if (day === dayKey(now - 86_400_000) && ms < now) return 'Yesterday';
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  return cached(`d${day}${sameYear ? '' : 'y'}`, () => (sameYear ? dayFmt : yearDayFmt).format(ms));
}

/** The full date and time, for the hover title. */
export function fullTime(ms: number): string {
  return cached(`f${Math.floor(ms / 1000)}`, () => fullFmt.format(ms));
}

// English like the rest of the interface ("3 minutes ago", "yesterday").
const relFmt = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['minute', 60], ['hour', 24], ['day', 7], ['week', 4.35], ['month', 12], ['year', Infinity],
];

/**
 * How long ago `ms` was, from `now`: "just now", "3 minutes ago", "yesterday", "2 weeks ago"
 * (past an hour, by calendar days: 22:00 seen at 00:10 is "yesterday", not "2 hours ago").
 */
export function relativeTime(ms: number, now = Date.now()): string {
  let n = Math.round((now - ms) / 1000);
  if (n < 45 && n > -45) return 'just now';
  n /= 60; // minutes
  if (Math.abs(n) >= 60) {
    const days = Math.round((midnight(now) - midnight(ms)) / 86_400_000);
    if (days >= 1) n = days * 1440;
  }
  let unit: Intl.RelativeTimeFormatUnit = 'minute';
  for (const [u, per] of STEPS) {
    unit = u;
    if (Math.abs(Math.round(n)) < per) break;
    n /= per;
  }
  return relFmt.format(-Math.round(n), unit);
}

/** Local midnight of the day of `ms` (a time that compares by calendar day). */
function midnight(ms: number): number {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** A message time's hover title, made when the pointer comes (not per render): both forms. */
export function hoverTitle(ms: number, now = Date.now()): string {
  return `${fullTime(ms)} (${relativeTime(ms, now)})`;
}
