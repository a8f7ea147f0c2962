/**
 * Work in time slices: items are processed in order, and a slice yields to the page after
 * `budgetMs`, so a feed of hundreds of images never causes a long task (> 50 ms) on our account.
 * The longest slice is recorded, so tests can check the promise.
 */
export class TimeSlicer {
  /**
   * @param {(item) => void} work called once per item
   * @param {{budgetMs?: number, now?: () => number, schedule?: (fn) => void, afterSlice?: () => void}} options
   */
  constructor(work, { budgetMs = 8, now = () => performance.now(), schedule, afterSlice = () => {} } = {}) {
    this.work = work;
    this.afterSlice = afterSlice;
    this.budgetMs = budgetMs;
    this.now = now;
    this.schedule = schedule ?? ((fn) => setTimeout(fn, 0));
    this.items = [];
    this.head = 0;
    this.scheduled = false;
    this.maxSliceMs = 0;
    this.slices = 0;
  }

  get pending() {
    return this.items.length - this.head;
  }

  push(item) {
    this.pushAll([item]);
  }

  pushAll(items) {
    for (const item of items) this.items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.runSlice());
    }
  }

  runSlice() {
    this.scheduled = false;
    const start = this.now();
    while (this.head < this.items.length) {
      this.work(this.items[this.head]);
      this.items[this.head] = undefined;
      this.head += 1;
      if (this.now() - start >= this.budgetMs) break;
    }
    if (this.head >= this.items.length) {
      this.items = [];
      this.head = 0;
    }
    this.afterSlice();
    this.slices += 1;
    this.maxSliceMs = Math.max(this.maxSliceMs, this.now() - start);
    if (this.pending > 0 && !this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.runSlice());
    }
  }
}
