package store

// KeptOverhead is what a Memory store counts for each kept event beyond
// its EventSize (see MemoryConfig.KeepMaxBytes).
const KeptOverhead = keptOverhead
