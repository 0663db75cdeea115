fn main() {} // replaced by the elementwise criterion bench
