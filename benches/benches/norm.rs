fn main() {} // replaced by the norm criterion bench
