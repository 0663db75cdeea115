fn main() {} // replaced by the pool criterion bench
