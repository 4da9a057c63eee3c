/**
 * setTimeout for delays beyond its 2^31-1 ms limit (about 24.8 days): MQTT session expiry and
 * will delay are up to 2^32-1 seconds, and Node fires an overlong timeout after 1 ms instead.
 */
const MAX_DELAY = 0x7fffffff;

export interface LongTimer {
  cancel(): void;
}

export function setLongTimeout(fn: () => void, ms: number): LongTimer {
  let timer: NodeJS.Timeout;
  const due = Date.now() + ms;
  const arm = (): void => {
    const left = due - Date.now();
    if (left > MAX_DELAY) {
      timer = setTimeout(arm, MAX_DELAY);
    } else {
      timer = setTimeout(fn, Math.max(0, left));
    }
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
