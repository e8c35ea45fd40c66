/**
 * Deterministic parallel compression within one stream: gzip as pigz does it (one member, blocks deflated with the
 * previous 32 KiB as dictionary), zstd as independent frames. The bytes depend only on the input.
 */
export { ParallelCompressor, compressBuffer, type CompressorOptions } from "./parallel.ts";
export { BLOCK_SIZE, GZIP_HEADER, type Codec } from "./codecs.ts";
export { Limiter, defaultJobs, setCompressionJobs, sharedLimiter } from "./limiter.ts";
