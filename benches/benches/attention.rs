fn main() {} // replaced by the attention criterion bench
