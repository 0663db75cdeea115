fn main() {} // replaced by the conv criterion bench
