fn main() {} // replaced by the gemm criterion bench
