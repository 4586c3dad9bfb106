// The new-message sound: a short two-note chime synthesized with the Web Audio API (no audio
// file to ship). One AudioContext, made on the first chime; a browser that blocks audio before
// a user gesture leaves it suspended and the chime silent, without an error.

let ctx: AudioContext | null = null;
let lastAt = 0;
/** Chimes closer together than this are one (a burst of messages rings once). */
const QUIET_MS = 1000;

export function chime(): void {
  const now = Date.now();
  if (now - lastAt < QUIET_MS || typeof AudioContext === 'undefined') return;
  lastAt = now;
  try {
    ctx ??= new AudioContext();
    if (ctx.state === 'suspended') void ctx.resume().catch(() => undefined);
    const t = ctx.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const start = t + i * 0.09;
      osc.type = 'sine';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.15, start + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.18);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.2);
    }
  } catch {
    // no audio on this device
  }
}
