import { Component, h, type ComponentType, type VNode } from 'preact';
import { useEffect, useReducer } from 'preact/hooks';
import type { Chat } from './chat';

/** Re-renders the calling component whenever the chat state changes. */
export function useChat(chat: Chat): void {
  const [, bump] = useReducer((n: number, _: void) => n + 1, 0);
  useEffect(() => chat.subscribe(() => bump()), [chat]);
}

/**
 * A component that re-renders only when one of its props changed identity (a memo without
 * preact/compat): message rows render once and stay put while the list around them changes.
 */
export function pure<P extends object>(render: (props: P) => VNode | null): ComponentType<P> {
  return class Pure extends Component<P> {
    shouldComponentUpdate(next: P): boolean {
      const prev = this.props as Record<string, unknown>;
      const now = next as Record<string, unknown>;
      for (const k in now) if (now[k] !== prev[k]) return true;
      for (const k in prev) if (!(k in now)) return true;
      return false;
    }
    render(props: P) {
      return render(props);
    }
  };
}

/**
 * A component whose code is a chunk of its own, fetched by dynamic import when it is first
 * rendered (panels most visits never open stay off the initial bundle): it shows nothing until
 * the chunk has come; a failed fetch is tried again at its next mount.
 */
export function lazy<P extends object>(load: () => Promise<ComponentType<P>>): ComponentType<P> {
  let loaded: ComponentType<P> | null = null;
  let pending: Promise<void> | null = null;
  return function Lazy(props: P) {
    const [, bump] = useReducer((n: number, _: void) => n + 1, 0);
    useEffect(() => {
      if (loaded) return;
      let live = true;
      pending ??= load().then(
        (c) => void (loaded = c),
        () => void (pending = null),
      );
      void pending.then(() => live && bump());
      return () => void (live = false);
    }, []);
    return loaded ? h(loaded, props) : null;
  };
}
