// Commands about one key (a person, a visit, an adjustment) run one at a time, in arrival order.
/** work(), with a synchronous throw turned into a rejection (as previous.then(work) would). */
function startNow<T>(work: () => Promise<T>): Promise<T> {
  try {
    return work();
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Runs async work one at a time per key, in arrival order: commands about one person are applied
 * in the order they are accepted (spec §7). Keys with nothing queued are forgotten.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    // Nothing queued for the key: the work starts now (up to its first await), no hop through a
    // resolved promise; it is the key's tail before anything else can run.
    const previous = this.tails.get(key);
    const result = previous === undefined ? startNow(work) : previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
