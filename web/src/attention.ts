// Telling the user about messages while they look elsewhere: the unread count in the document
// title and as a red badge on the favicon (both only rewritten when they change), and desktop
// notifications (the Notification API; permission is asked only from a click, see Sidebar).

const BASE_TITLE = 'imd';
let shown = { total: -1, title: '' };
let plainIcon: string | null = null;

function badgeIcon(total: number): string {
  const text = total > 99 ? '99+' : String(total);
  const size = text.length > 2 ? 13 : 16;
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">' +
    '<rect width="32" height="32" rx="7" fill="#3b5bdb"/><path d="M8 10h16v10H14l-5 4v-4H8z" fill="#fff"/>' +
    '<circle cx="22" cy="10" r="10" fill="#c92a2a"/>' +
    `<text x="22" y="15" font-family="sans-serif" font-size="${size}" font-weight="700" fill="#fff" text-anchor="middle">${text}</text>` +
    '</svg>';
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/** The title and favicon follow the state at most this often (a new favicon costs a decode). */
const ATTENTION_EVERY_MS = 500;
let latest: { total: number; conversation: string | null } | null = null;
let timer: number | undefined;

/** Shows `total` unread in the title ("(3) # general · imd") and on the favicon, soon. */
export function attention(total: number, conversation: string | null): void {
  latest = { total, conversation };
  if (timer !== undefined) return;
  apply();
  timer = window.setTimeout(() => {
    timer = undefined;
    apply();
  }, ATTENTION_EVERY_MS);
}

function apply(): void {
  if (!latest) return;
  const { total, conversation } = latest;
  const title = (total > 0 ? `(${total > 999 ? '999+' : total}) ` : '') + (conversation ? `${conversation} · ` : '') + BASE_TITLE;
  if (title !== shown.title) document.title = title;
  if (total !== shown.total) {
    const link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
    if (link) {
      plainIcon ??= link.getAttribute('href') ?? '/favicon.svg';
      link.setAttribute('href', total > 0 ? badgeIcon(total) : plainIcon);
    }
  }
  shown = { total, title };
}

export function notificationsSupported(): boolean {
  return typeof Notification !== 'undefined';
}

/** 'default' until the user answered; 'unsupported' where the browser has no notifications. */
export function notificationPermission(): NotificationPermission | 'unsupported' {
  return notificationsSupported() ? Notification.permission : 'unsupported';
}

/** Asks for permission; call it from a click handler only. */
export async function askNotifications(): Promise<NotificationPermission | 'unsupported'> {
  if (!notificationsSupported()) return 'unsupported';
  return Notification.requestPermission();
}

const NOTE_BODY_CHARS = 140;

/** A desktop notification, one per conversation at a time (tag), if the user allowed them. */
export function notify(title: string, body: string, tag: string, onClick: () => void): void {
  if (!notificationsSupported() || Notification.permission !== 'granted') return;
  try {
    const n = new Notification(title, { body: body.slice(0, NOTE_BODY_CHARS), tag });
    n.onclick = () => {
      onClick();
      n.close();
    };
  } catch {
    // e.g. a browser that allows notifications from a service worker only
  }
}
