/**
 * Imported first by the entry point, before anything touches libuv's thread pool (which
 * reads this once, at first use). Group commit runs one fdatasync per touched file in
 * parallel on that pool; libuv's default of 4 threads serialises a group that touched
 * dozens of versions. An explicit UV_THREADPOOL_SIZE from the environment wins.
 */
process.env.UV_THREADPOOL_SIZE ??= "16";
