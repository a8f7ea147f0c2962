/**
 * A task queue with bounded concurrency, priorities and in-flight dedupe: a key that is already
 * queued or running returns the promise of that run instead of starting another (a feed shows the
 * same image many times; the backend should see it once). Waiting tasks start lowest priority
 * number first (0: a picture on screen), in arrival order within a priority; asking again for a
 * waiting key with a lower number moves it up.
 */
export class QueueFullError extends Error {
  constructor(limit) {
    super(`queue is full (${limit} tasks waiting)`);
    this.name = 'QueueFullError';
  }
}

export class TaskQueue {
  constructor({ concurrency = 3, maxQueued = 1000 } = {}) {
    this.concurrency = concurrency;
    this.maxQueued = maxQueued;
    this.waiting = []; // [{key, fn, priority, resolve, reject}], sorted by priority
    this.byKey = new Map(); // key -> promise, while queued or running
    this.active = 0;
  }

  get pending() {
    return this.waiting.length;
  }

  /** Run `fn()` (async) under `key`; resolves or rejects with its result. */
  run(key, fn, { priority = 1 } = {}) {
    const existing = this.byKey.get(key);
    if (existing) {
      this.raise(key, priority);
      return existing;
    }
    if (this.waiting.length >= this.maxQueued) return Promise.reject(new QueueFullError(this.maxQueued));
    const promise = new Promise((resolve, reject) => {
      this.insert({ key, fn, priority, resolve, reject });
    });
    this.byKey.set(key, promise);
    this.pump();
    return promise;
  }

  insert(task) {
    let i = this.waiting.length;
    while (i > 0 && this.waiting[i - 1].priority > task.priority) i -= 1;
    this.waiting.splice(i, 0, task);
  }

  /** A waiting task asked for again with a more urgent priority moves up. */
  raise(key, priority) {
    const i = this.waiting.findIndex((t) => t.key === key);
    if (i < 0 || this.waiting[i].priority <= priority) return;
    const [task] = this.waiting.splice(i, 1);
    task.priority = priority;
    this.insert(task);
  }

  /** Reject every task still waiting (running ones finish); used when the backend goes away. */
  clear(error) {
    const dropped = this.waiting.splice(0);
    for (const task of dropped) {
      this.byKey.delete(task.key);
      task.reject(error);
    }
    return dropped.length;
  }

  pump() {
    while (this.active < this.concurrency && this.waiting.length > 0) {
      const task = this.waiting.shift();
      this.active += 1;
      Promise.resolve()
        .then(task.fn)
        .then(task.resolve, task.reject)
        .finally(() => {
          this.active -= 1;
          this.byKey.delete(task.key);
          this.pump();
        });
    }
  }
}

/**
 * A lane that runs async functions one at a time, in call order, whatever each one awaits; a
 * failure rejects its own call and does not stop the ones after it.
 */
export function createSerialLane() {
  let tail = Promise.resolve();
  return (fn) => {
    const done = tail.then(fn, fn);
    tail = done.catch(() => {});
    return done;
  };
}
