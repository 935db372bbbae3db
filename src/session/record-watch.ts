/**
 * A watch on one stored record (a session's, or the application's token for an API): what a process waiting for
 * another process's token exchange listens to.
 */
export interface RecordWatch {
  /**
   * Resolves at the first change to the record since the watch began or since the last `next()` resolved (at
   * once when one came meanwhile) with `true`, or with `false` after `timeoutMs` when none comes.
   */
  next(timeoutMs: number): Promise<boolean>;
  /** Stops listening; a `next()` still pending resolves (with `false`). */
  stop(): void;
}

interface Watcher {
  changed: boolean;
  wake: ((told: boolean) => void) | undefined;
}

/**
 * The watches of one session store, by the record's key. The store calls `changed(key)` when it learns that a
 * record changed (it wrote it, or Redis said another process did), or `changed(undefined)` when it cannot tell
 * which (every watch wakes). A watch is kept only while someone waits on it.
 */
export class RecordWatches {
  private readonly byKey = new Map<string, Set<Watcher>>();

  watch(key: string): RecordWatch {
    const watcher: Watcher = { changed: false, wake: undefined };
    let set = this.byKey.get(key);
    if (set === undefined) this.byKey.set(key, (set = new Set()));
    set.add(watcher);
    const byKey = this.byKey;
    return {
      next(timeoutMs) {
        if (watcher.changed) {
          watcher.changed = false;
          return Promise.resolve(true);
        }
        return new Promise<boolean>((resolve) => {
          const timer = setTimeout(done, Math.max(0, timeoutMs), false);
          function done(told: boolean) {
            clearTimeout(timer);
            watcher.wake = undefined;
            watcher.changed = false;
            resolve(told);
          }
          watcher.wake = done;
        });
      },
      stop() {
        const watchers = byKey.get(key);
        if (watchers?.delete(watcher) && watchers.size === 0) byKey.delete(key);
        watcher.wake?.(false);
      },
    };
  }

  changed(key: string | undefined): void {
    if (this.byKey.size === 0) return;
    if (key === undefined) {
      for (const watchers of this.byKey.values()) for (const watcher of watchers) notify(watcher);
      return;
    }
    const watchers = this.byKey.get(key);
    if (watchers !== undefined) for (const watcher of watchers) notify(watcher);
  }
}

function notify(watcher: Watcher): void {
  if (watcher.wake !== undefined) watcher.wake(true);
  else watcher.changed = true;
}
