import { useEffect, useReducer } from 'preact/hooks';
import type { Chat } from './chat';

/** Re-renders the calling component whenever the chat state changes. */
export function useChat(chat: Chat): void {
  const [, bump] = useReducer((n: number, _: void) => n + 1, 0);
  useEffect(() => chat.subscribe(() => bump()), [chat]);
}

export function formatTime(ms: number): string {
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}
