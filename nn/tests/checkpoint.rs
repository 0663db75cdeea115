//! Safetensors checkpoints: bit-exact round trips, the byte layout against the spec, module loading,
//! a table of malformed files with their messages, atomic writes, training checkpoints, and a fuzz
//! property that corrupt headers never panic.

use autograd::Var;
use kernels::StridedLayout;
use kernels::pool::PooledVec;
use nn::checkpoint::{self, SafeTensors, TrainingCheckpoint};
use nn::{Conv2d, Error, GroupNorm, Init, LayerNorm, Linear, Module};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use tensor::storage::CpuStorage;
use tensor::{DType, Tensor};

// ---------- helpers ----------

fn tensor(storage: CpuStorage, shape: &[usize]) -> Tensor {
    Tensor::from_storage(storage, StridedLayout::contiguous(shape)).unwrap()
}

/// Every element's bit pattern in row-major order (read from storage directly, not via the checkpoint
/// code), so that NaN payloads and -0.0 are compared exactly.
fn bits(t: &Tensor) -> Vec<u64> {
    let c = t.contiguous().unwrap();
    let (o, n) = (c.offset(), c.numel());
    match c.storage().cpu().unwrap() {
        CpuStorage::F32(v) => v[o..o + n].iter().map(|x| x.to_bits() as u64).collect(),
        CpuStorage::F64(v) => v[o..o + n].iter().map(|x| x.to_bits()).collect(),
        CpuStorage::F16(v) | CpuStorage::BF16(v) => v[o..o + n].iter().map(|&x| x as u64).collect(),
        CpuStorage::I64(v) => v[o..o + n].iter().map(|&x| x as u64).collect(),
        CpuStorage::U8(v) => v[o..o + n].iter().map(|&x| x as u64).collect(),
    }
}

fn assert_same_tensor(name: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(a.dtype(), b.dtype(), "{name}: dtype");
    assert_eq!(a.shape(), b.shape(), "{name}: shape");
    assert_eq!(bits(a), bits(b), "{name}: bits");
}

fn checkpoint_msg(e: Error) -> String {
    match e {
        Error::Checkpoint { msg, .. } => msg,
        other => panic!("expected Error::Checkpoint, got {other:?}"),
    }
}

fn no_meta() -> BTreeMap<String, String> {
    BTreeMap::new()
}

/// One tensor of each dtype with awkward values (NaN payloads, -0, ±inf, subnormals, extremes), plus
/// non-contiguous views, 0-d and empty tensors.
fn zoo() -> Vec<(String, Tensor)> {
    let f32s = vec![
        1.5f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234),
        1e-45,
        3.4e38,
        -7.25,
    ];
    let f64s = vec![f64::from_bits(0x7ff8_0000_0000_0abc), -0.0, 5e-324, -1.0e308, 0.1, 2.0];
    let f16_bits: Vec<u16> = vec![0x3c00, 0x8000, 0x7c00, 0x7e01, 0x0001, 0xfbff];
    let bf16_bits: Vec<u16> = vec![0x3f80, 0x8000, 0x7f80, 0x7fc1, 0x0001, 0xff7f];
    let i64s = vec![i64::MIN, -1, 0, 1, i64::MAX, 42];
    let u8s: Vec<u8> = (0..24).map(|i| (i * 11) as u8).collect();
    let base = Tensor::from_vec(f32s, &[2, 4]).unwrap();
    let grid = Tensor::from_vec((0..20).map(|i| i as f64 * 0.5).collect::<Vec<_>>(), &[4, 5]).unwrap();
    vec![
        ("f32".into(), base.clone()),
        ("f64".into(), Tensor::from_vec(f64s, &[3, 2]).unwrap()),
        ("f16".into(), tensor(CpuStorage::F16(PooledVec::from_vec(f16_bits)), &[6])),
        ("bf16".into(), tensor(CpuStorage::BF16(PooledVec::from_vec(bf16_bits)), &[2, 3])),
        ("i64".into(), Tensor::from_vec(i64s, &[6, 1]).unwrap()),
        ("u8".into(), Tensor::from_vec(u8s, &[2, 3, 4]).unwrap()),
        // non-contiguous views
        ("view.transposed".into(), base.t().unwrap()),
        ("view.narrowed".into(), grid.narrow(1, 1, 3).unwrap()),
        ("view.expanded".into(), Tensor::from_vec(vec![3i64, -4], &[2, 1]).unwrap().expand(&[2, 3]).unwrap()),
        ("view.selected".into(), grid.select(1, 2).unwrap()),
        // 0-d and empty
        ("scalar.f32".into(), Tensor::scalar(-2.5f32)),
        ("scalar.u8".into(), Tensor::scalar(200u8)),
        ("empty.1d".into(), Tensor::zeros(&[0], DType::F64)),
        ("empty.3d".into(), Tensor::zeros(&[2, 0, 3], DType::BF16)),
    ]
}

// ---------- round trips ----------

#[test]
fn every_dtype_round_trips_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zoo.safetensors");
    let tensors = zoo();
    assert!(!tensors[6].1.is_contiguous() && !tensors[7].1.is_contiguous() && !tensors[8].1.is_contiguous());
    let meta = BTreeMap::from([("note".to_string(), "héllo \"quoted\"\n".to_string())]);
    checkpoint::save(&path, &tensors, &meta).unwrap();

    let st = SafeTensors::open(&path).unwrap();
    let mut expected_names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    expected_names.sort();
    assert_eq!(st.names(), expected_names);
    assert_eq!(st.metadata(), &meta);
    for (name, t) in &tensors {
        let back = st.get(name).unwrap();
        assert_same_tensor(name, &back, t);
        // (kernels' `is_contiguous` says false for some empty shapes, e.g. [2, 0, 3]; nothing to check there)
        assert!(back.numel() == 0 || back.is_contiguous(), "{name}");
    }
    // Views were written in logical order: transposed[j][i] == base[i][j] (known values).
    let tr = st.get("view.transposed").unwrap();
    assert_eq!(tr.get(&[3, 1]).unwrap(), -7.25);
    assert_eq!(tr.get(&[2, 0]).unwrap(), f64::INFINITY);
    assert_eq!(bits(&tr)[2], 0x8000_0000); // tr[1][0] = base[0][1] = -0.0
    let narrowed = st.get("view.narrowed").unwrap();
    assert_eq!(
        narrowed.to_vec::<f64>().unwrap(),
        vec![0.5, 1.0, 1.5, 3.0, 3.5, 4.0, 5.5, 6.0, 6.5, 8.0, 8.5, 9.0]
    );
    assert_eq!(st.get("view.expanded").unwrap().to_vec::<i64>().unwrap(), vec![3, 3, 3, -4, -4, -4]);
    // Raw bytes are the little-endian encoding.
    assert_eq!(st.tensor_bytes("scalar.f32").unwrap(), &(-2.5f32).to_le_bytes());
    assert_eq!(st.tensor_bytes("empty.3d").unwrap(), &[] as &[u8]);
    // Asking for an absent tensor is a typed error naming it.
    assert!(checkpoint_msg(st.get("nope").unwrap_err()).contains("`nope`"));
}

#[test]
fn output_is_deterministic_and_save_matches_serialize() {
    let mut tensors = zoo();
    let a = checkpoint::serialize(&tensors, &no_meta()).unwrap();
    tensors.reverse();
    let b = checkpoint::serialize(&tensors, &no_meta()).unwrap();
    assert_eq!(a, b, "input order must not change the bytes");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.safetensors");
    checkpoint::save(&path, &tensors, &no_meta()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), a);
    // Header padded so the data buffer starts 8-aligned; every tensor starts at a multiple of its
    // element size.
    let n = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0);
    let st = SafeTensors::from_bytes(a, "mem").unwrap();
    for name in st.names() {
        let info = st.info(name).unwrap();
        assert_eq!(info.data_offsets.0 % info.dtype.size_in_bytes(), 0, "{name}");
    }
}

#[test]
fn small_file_matches_the_spec_byte_by_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    let b = Tensor::from_vec(vec![7u8, 9], &[2]).unwrap();
    let a = Tensor::scalar(1.0f32);
    let meta = BTreeMap::from([("k".to_string(), "v".to_string())]);
    checkpoint::save(&path, &[("b", &b), ("a", &a)], &meta).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    // Hand-written expectation: 130 bytes of JSON padded with 6 spaces to 136 = 0x88, then the F32
    // scalar (1.0 = 0x3f800000 little-endian) and the two u8 values.
    let json = r#"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    assert_eq!(json.len(), 130);
    let mut expected = vec![0x88, 0, 0, 0, 0, 0, 0, 0];
    expected.extend_from_slice(json.as_bytes());
    expected.extend_from_slice(b"      ");
    expected.extend_from_slice(&[0x00, 0x00, 0x80, 0x3f, 7, 9]);
    assert_eq!(bytes, expected);

    // An independent reader (plain serde_json) sees the spec's structure.
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + 136]).unwrap();
    assert_eq!(header["b"]["dtype"], "U8");
    assert_eq!(header["b"]["shape"], serde_json::json!([2]));
    assert_eq!(header["a"]["data_offsets"], serde_json::json!([0, 4]));
    assert_eq!(header["__metadata__"]["k"], "v");
}

// ---------- modules ----------

struct Net {
    conv: Conv2d,
    norm: GroupNorm,
    head: Vec<Linear>,
    ln: LayerNorm,
}
nn::impl_module!(Net { params: [], children: [conv, norm, head, ln] });

impl Net {
    fn new(seed: u64) -> Self {
        let mut init = Init::new(seed);
        Net {
            conv: Conv2d::same3x3(&mut init, 2, 4),
            norm: GroupNorm::new(&mut init, 2, 4).unwrap(),
            head: vec![Linear::new(&mut init, 64, 8, true), Linear::new(&mut init, 8, 3, false)],
            ln: LayerNorm::new(&mut init, 3),
        }
    }
    fn forward(&self, x: &Var) -> Vec<f64> {
        let h = self.norm.forward(&self.conv.forward(x).unwrap()).unwrap().silu().unwrap();
        let h = h.reshape(&[1, 64]).unwrap();
        let h = self.head[1].forward(&self.head[0].forward(&h).unwrap().silu().unwrap()).unwrap();
        self.ln.forward(&h).unwrap().value().to_vec_f64()
    }
}

fn param_bits(m: &dyn Module) -> Vec<(String, Vec<u64>)> {
    m.named_params().into_iter().map(|(n, p)| (n, bits(p.value()))).collect()
}

#[test]
fn module_round_trip_gives_identical_params_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    let mut a = Net::new(1);
    // Make the norm parameters non-trivial so they are checked too.
    for (i, p) in [&mut a.norm.weight, &mut a.ln.bias].into_iter().enumerate() {
        let n = p.numel();
        p.set_value(Tensor::from_vec((0..n).map(|k| 0.5 + (k + i) as f32 * 0.25).collect(), &[n]).unwrap())
            .unwrap();
    }
    checkpoint::save_module(&path, &a, &no_meta()).unwrap();

    let mut b = Net::new(2);
    assert_ne!(param_bits(&a), param_bits(&b), "different seeds must give different params");
    let st = SafeTensors::open(&path).unwrap();
    let report = checkpoint::load_into(&mut b, &st, true).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.loaded.len(), 9); // conv w+b, norm w+b, head.0 w+b, head.1 w, ln w+b
    assert!(report.loaded.contains(&"head.1.weight".to_string()));
    assert_eq!(param_bits(&a), param_bits(&b));

    let x = Var::constant(
        Tensor::from_vec((0..32).map(|i| (i as f32 * 0.37).sin()).collect(), &[1, 2, 4, 4]).unwrap(),
    );
    // Same parameters, same input, same deterministic kernels: outputs must agree exactly (tolerance 0).
    let (ya, yb) = (a.forward(&x), b.forward(&x));
    assert_eq!(ya.len(), 3);
    assert_eq!(ya, yb);
}

#[test]
fn missing_unexpected_and_mismatched_keys_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    let mut init = Init::new(5);
    // The module: lin [5,3] weight + [5] bias, ln [5] weight + bias.
    struct M {
        lin: Linear,
        ln: LayerNorm,
    }
    nn::impl_module!(M { params: [], children: [lin, ln] });
    let mut m = M { lin: Linear::new(&mut init, 3, 5, true), ln: LayerNorm::new(&mut init, 5) };
    let before = param_bits(&m);

    let ln_w = Tensor::from_vec(vec![2.0f32, 3.0, 4.0, 5.0, 6.0], &[5]).unwrap();
    let file: Vec<(&str, Tensor)> = vec![
        ("lin.weight", Tensor::zeros(&[4, 3], DType::F32)), // shape mismatch
        ("lin.bias", Tensor::zeros(&[5], DType::F64)),      // dtype mismatch
        ("ln.weight", ln_w.clone()),                        // matches
        ("stray.weight", Tensor::zeros(&[1], DType::F32)),  // unexpected
    ]; // ln.bias missing
    checkpoint::save(&path, &file, &no_meta()).unwrap();
    let st = SafeTensors::open(&path).unwrap();

    // Strict: one error listing everything, module untouched.
    let msg = checkpoint_msg(checkpoint::load_into(&mut m, &st, true).unwrap_err());
    for needle in [
        "strict",
        "`ln.bias`",
        "`stray.weight`",
        "`lin.weight`: module [5, 3] f32, checkpoint [4, 3] f32",
        "`lin.bias`: module [5] f32, checkpoint [5] f64",
    ] {
        assert!(msg.contains(needle), "`{needle}` not in: {msg}");
    }
    assert_eq!(param_bits(&m), before);

    // Lenient: the matching key is loaded, the rest reported and left alone.
    let r = checkpoint::load_into(&mut m, &st, false).unwrap();
    assert_eq!(r.loaded, vec!["ln.weight"]);
    assert_eq!(r.missing, vec!["ln.bias"]);
    assert_eq!(r.unexpected, vec!["stray.weight"]);
    let mism: Vec<(&str, &[usize], DType)> =
        r.mismatched.iter().map(|k| (k.name.as_str(), &k.file_shape[..], k.file_dtype)).collect();
    assert_eq!(
        mism,
        vec![("lin.bias", &[5usize][..], DType::F64), ("lin.weight", &[4usize, 3][..], DType::F32)]
    );
    assert_eq!(bits(m.ln.weight.value()), bits(&ln_w));
    assert_eq!(bits(m.lin.weight.value()), before[0].1);
}

// ---------- malformed files ----------

/// A valid two-tensor file: `a` F32 [2,3] at [0,24], `b` F32 [2] at [24,32].
fn valid_file() -> Vec<u8> {
    let a = Tensor::from_vec((0..6).map(|i| i as f32).collect(), &[2, 3]).unwrap();
    let b = Tensor::from_vec(vec![10.0f32, 11.0], &[2]).unwrap();
    checkpoint::serialize(&[("a", a), ("b", b)], &no_meta()).unwrap()
}

fn split(file: &[u8]) -> (String, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    (String::from_utf8(file[8..8 + n].to_vec()).unwrap(), file[8 + n..].to_vec())
}

/// Reassembles a file from header text and data, with a truthful length prefix.
fn join(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

/// The valid file with one substring of its header replaced (asserting the substring exists).
fn edit_header(from: &str, to: &str) -> Vec<u8> {
    edit_header_data(from, to, &split(&valid_file()).1)
}

/// As [`edit_header`], with another data buffer.
fn edit_header_data(from: &str, to: &str, data: &[u8]) -> Vec<u8> {
    let (h, _) = split(&valid_file());
    assert!(h.contains(from), "`{from}` not in header {h}");
    join(h.replacen(from, to, 1).as_bytes(), data)
}

#[test]
fn malformed_files_give_specific_errors() {
    let valid = valid_file();
    let (header, data) = split(&valid);
    assert!(header.contains(r#""b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}"#), "{header}");
    let with_len = |n: u64| {
        let mut f = valid.clone();
        f[..8].copy_from_slice(&n.to_le_bytes());
        f
    };
    let mut gap_data = data.clone();
    gap_data.extend_from_slice(&[0; 4]);
    let mut trailing = valid.clone();
    trailing.extend_from_slice(&[1, 2, 3, 4]);
    let mut not_utf8 = header.clone().into_bytes();
    not_utf8[3] = 0xff;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "shorter than the length prefix",
            valid[..5].to_vec(),
            "file is 5 bytes, shorter than the 8-byte header length",
        ),
        (
            "truncated header",
            valid[..8 + 20].to_vec(),
            "runs past the end of the file (20 bytes after the length prefix)",
        ),
        (
            "lying header length (too long)",
            with_len(header.len() as u64 + 1000),
            "runs past the end of the file",
        ),
        ("lying header length (absurd)", with_len(u64::MAX), "exceeds the limit of 100000000 bytes"),
        ("lying header length (too short)", with_len(header.len() as u64 - 9), "header is not valid JSON"),
        (
            "truncated data",
            valid[..valid.len() - 4].to_vec(),
            "tensor `b`: data_offsets [24, 32] end past the data buffer of 28 bytes",
        ),
        (
            "offsets past the end",
            edit_header("[24,32]", "[24,40]"),
            "tensor `b`: data_offsets [24, 40] end past the data buffer of 32 bytes",
        ),
        (
            "begin > end",
            edit_header("[24,32]", "[32,24]"),
            "tensor `b`: data_offsets [32, 24] have begin > end",
        ),
        (
            "overlapping ranges",
            edit_header("[24,32]", "[16,24]"),
            "tensors `a` [0, 24] and `b` [16, 24] overlap",
        ),
        (
            "gap between tensors",
            edit_header_data("[24,32]", "[28,36]", &gap_data),
            "bytes [24, 28) before tensor `b` belong to no tensor",
        ),
        ("trailing bytes", trailing, "bytes [32, 36) at the end of the data buffer belong to no tensor"),
        (
            "unknown dtype",
            edit_header(r#""b":{"dtype":"F32""#, r#""b":{"dtype":"F33""#),
            "tensor `b`: unknown dtype `F33`",
        ),
        (
            "unsupported spec dtype",
            edit_header(r#""b":{"dtype":"F32""#, r#""b":{"dtype":"I32""#),
            "tensor `b`: dtype `I32` is a safetensors dtype this engine does not support",
        ),
        (
            "wrong shape for the byte length",
            edit_header("[2],", "[3],"),
            "tensor `b`: shape [3] of F32 needs 12 bytes but data_offsets [24, 32] span 8",
        ),
        (
            "shape product overflow",
            edit_header("[2],", "[4294967296,4294967296],"),
            "tensor `b`: shape [4294967296, 4294967296] has an element count that overflows",
        ),
        (
            "overflow behind a zero dim",
            edit_header("[2],", "[0,4294967296,4294967296],"),
            "tensor `b`: shape [0, 4294967296, 4294967296] has an element count that overflows",
        ),
        (
            "negative dimension",
            edit_header("[2],", "[-2],"),
            "tensor `b`: `shape` must be an array of non-negative integers, element 0 is -2",
        ),
        (
            "shape not an array",
            edit_header("[2],", "\"2\","),
            "tensor `b`: `shape` must be an array of non-negative integers, found a string",
        ),
        (
            "dtype not a string",
            edit_header(r#""b":{"dtype":"F32""#, r#""b":{"dtype":4"#),
            "tensor `b`: `dtype` must be a string, found a number",
        ),
        (
            "missing dtype",
            edit_header(r#""b":{"dtype":"F32","#, r#""b":{"#),
            "tensor `b`: missing field `dtype`",
        ),
        (
            "three offsets",
            edit_header("[24,32]", "[24,32,40]"),
            "tensor `b`: `data_offsets` must have 2 elements, found 3",
        ),
        ("unknown field", edit_header(r#""b":{"#, r#""b":{"extra":1,"#), "tensor `b`: unknown field `extra`"),
        (
            "duplicate field",
            edit_header(r#""b":{"#, r#""b":{"shape":[2],"#),
            "tensor `b`: field `shape` appears twice",
        ),
        (
            "duplicate tensor",
            edit_header(r#","b":"#, r#","a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"b":"#),
            "key `a` appears twice in the header",
        ),
        (
            "entry not an object",
            edit_header(r#""b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}"#, r#""b":[24,32]"#),
            "tensor `b`: entry must be an object, found an array",
        ),
        (
            "metadata not strings",
            edit_header(r#"{"a":"#, r#"{"__metadata__":{"k":1},"a":"#),
            "`__metadata__` value of key `k` is not a string",
        ),
        ("non-JSON header", edit_header(r#"{"a":"#, r#"x"a":"#), "header is not valid JSON"),
        (
            "header not an object",
            join(b"[1,2,3]", &data),
            "header is JSON but not an object (found an array)",
        ),
        ("header not UTF-8", join(&not_utf8, &data), "header is not UTF-8"),
    ];

    let dir = tempfile::tempdir().unwrap();
    for (i, (what, bytes, needle)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.safetensors"));
        std::fs::write(&path, &bytes).unwrap();
        match SafeTensors::open(&path) {
            Ok(_) => panic!("{what}: accepted"),
            Err(Error::Checkpoint { path: p, msg }) => {
                assert!(msg.contains(needle), "{what}: expected `{needle}` in `{msg}`");
                assert_eq!(Path::new(&p), path, "{what}: path");
            }
            Err(other) => panic!("{what}: wrong error kind {other:?}"),
        }
    }
    // The unmodified file and a reordered-but-tiling one are fine.
    SafeTensors::from_bytes(valid, "valid").unwrap();
    let (h, d) = split(&valid_file());
    let swapped = h.replace("[0,24]", "[8,32]").replace("[24,32]", "[0,8]");
    let mut d2 = d[24..32].to_vec();
    d2.extend_from_slice(&d[..24]);
    let st = SafeTensors::from_bytes(join(swapped.as_bytes(), &d2), "swapped").unwrap();
    assert_eq!(st.get("b").unwrap().to_vec::<f32>().unwrap(), vec![10.0, 11.0]);
    assert_eq!(st.get("a").unwrap().to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.safetensors");
    match SafeTensors::open(&path) {
        Err(Error::Io { path: p, .. }) => assert_eq!(Path::new(&p), path),
        other => panic!("{other:?}"),
    }
}

// ---------- atomic writes ----------

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn failed_writes_leave_the_previous_file_and_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let v1 = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    checkpoint::save(&path, &[("w", &v1)], &no_meta()).unwrap();
    let original = std::fs::read(&path).unwrap();

    // A tensor list that cannot be serialised (name used twice, reserved name).
    let v2 = Tensor::from_vec(vec![3.0f32], &[1]).unwrap();
    let msg = checkpoint_msg(checkpoint::save(&path, &[("w", &v2), ("w", &v2)], &no_meta()).unwrap_err());
    assert!(msg.contains("tensor `w` appears twice"), "{msg}");
    let msg = checkpoint_msg(checkpoint::save(&path, &[("__metadata__", &v2)], &no_meta()).unwrap_err());
    assert!(msg.contains("reserved"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), original);

    // Target directory missing: an I/O error naming the temp file, nothing created anywhere.
    let missing = dir.path().join("no_such_dir").join("x.safetensors");
    match checkpoint::save(&missing, &[("w", &v2)], &no_meta()) {
        Err(Error::Io { path, .. }) => assert!(path.contains("no_such_dir"), "{path}"),
        other => panic!("{other:?}"),
    }

    // Failure after the temp file was fully written: the rename onto a non-empty directory fails.
    let blocked = dir.path().join("blocked.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"keep").unwrap();
    match checkpoint::save(&blocked, &[("w", &v2)], &no_meta()) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("blocked.safetensors"), "{path}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(blocked.join("keep")).unwrap(), b"keep");
    assert_eq!(dir_names(dir.path()), vec!["blocked.safetensors", "ckpt.safetensors"]);

    // A successful overwrite replaces the content and leaves no temp file either.
    checkpoint::save(&path, &[("w", &v2)], &no_meta()).unwrap();
    assert_eq!(SafeTensors::open(&path).unwrap().get("w").unwrap().to_vec::<f32>().unwrap(), vec![3.0]);
    assert_eq!(dir_names(dir.path()), vec!["blocked.safetensors", "ckpt.safetensors"]);
}

#[test]
fn open_map_survives_an_atomic_overwrite() {
    // The reader's map keeps the old inode: a rename over the file does not disturb it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    checkpoint::save(&path, &[("w", Tensor::from_vec(vec![1i64, 2], &[2]).unwrap())], &no_meta()).unwrap();
    let st = SafeTensors::open(&path).unwrap();
    checkpoint::save(&path, &[("w", Tensor::from_vec(vec![7i64], &[1]).unwrap())], &no_meta()).unwrap();
    assert_eq!(st.get("w").unwrap().to_vec::<i64>().unwrap(), vec![1, 2]);
    assert_eq!(SafeTensors::open(&path).unwrap().get("w").unwrap().to_vec::<i64>().unwrap(), vec![7]);
}

// ---------- training checkpoints ----------

fn training_ckpt(ema: bool) -> TrainingCheckpoint {
    let net = Net::new(3);
    let model = checkpoint::state_dict(&net);
    let ema = ema.then(|| model.iter().map(|(n, t)| (n.clone(), t.to_dtype(DType::F64).unwrap())).collect());
    TrainingCheckpoint {
        optimizer: vec![
            ("head.0.weight.exp_avg".into(), Tensor::full(&[8, 64], 0.125, DType::F32)),
            ("head.0.weight.exp_avg_sq".into(), Tensor::full(&[8, 64], 1e-8, DType::F32)),
            ("t".into(), Tensor::scalar(17i64)),
        ],
        model,
        ema,
        step: 12_345_678_901_234,
        rng_state: vec![u64::MAX, 0, 42],
        config: "{\"name\": \"mdm-64\",\n \"lr\": 1e-4, \"note\": \"ünïcode\"}".into(),
    }
}

fn sorted(v: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn assert_same_list(what: &str, a: &[(String, Tensor)], b: &[(String, Tensor)]) {
    let (a, b) = (sorted(a), sorted(b));
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>(),
        "{what}"
    );
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert_same_tensor(&format!("{what}.{n}"), x, y);
    }
}

#[test]
fn training_checkpoint_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for with_ema in [true, false] {
        let path = dir.path().join(format!("train_{with_ema}.safetensors"));
        let ck = training_ckpt(with_ema);
        ck.save(&path).unwrap();
        let back = TrainingCheckpoint::load(&path).unwrap();
        assert_eq!(back.step, 12_345_678_901_234);
        assert_eq!(back.rng_state, vec![u64::MAX, 0, 42]);
        assert_eq!(back.config, ck.config);
        assert_same_list("model", &back.model, &ck.model);
        assert_same_list("optim", &back.optimizer, &ck.optimizer);
        assert_eq!(back.ema.is_some(), with_ema);
        if let (Some(a), Some(b)) = (&back.ema, &ck.ema) {
            assert_same_list("ema", a, b);
        }
        // The file is plain safetensors with the documented prefixes and metadata.
        let st = SafeTensors::open(&path).unwrap();
        assert!(st.names().contains(&"model.head.0.weight"));
        assert!(st.names().contains(&"optim.t"));
        assert_eq!(st.names().iter().any(|n| n.starts_with("ema.")), with_ema);
        assert_eq!(st.metadata()["step"], "12345678901234");
        assert_eq!(st.metadata()["format_version"], "1");
        // The EMA section loads into a module by prefix.
        if with_ema {
            let mut m = Net::new(9);
            let r = checkpoint::load_into_prefixed(&mut m, &st, "model.", true).unwrap();
            assert_eq!(r.loaded.len(), 9);
            let r = checkpoint::load_state_dict(&mut m, &back.model, true).unwrap();
            assert!(r.is_clean());
            assert_eq!(param_bits(&m), param_bits(&Net::new(3)));
        }
    }
}

/// (metadata field, new value or None to remove it, extra tensors, expected message part)
type MetaCase<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, &'a Tensor)>, &'a str);

#[test]
fn training_checkpoint_bad_metadata_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = training_ckpt(false);
    let w = Tensor::zeros(&[2], DType::F32);
    let cases: Vec<MetaCase> = vec![
        ("step", Some("12x"), vec![], "metadata field `step`: `12x` is not a non-negative integer"),
        ("step", None, vec![], "metadata field `step` is missing"),
        ("rng", Some("[1,-2]"), vec![], "metadata field `rng`: `[1,-2]` is not a JSON array"),
        ("format_version", Some("2"), vec![], "metadata field `format_version`: `2` is not supported"),
        ("format_version", Some("one"), vec![], "metadata field `format_version`: `one` is not an integer"),
        ("ema", Some("yes"), vec![], "metadata field `ema`: `yes` is not `true` or `false`"),
        ("config", None, vec![], "metadata field `config` is missing"),
        (
            "ema",
            Some("false"),
            vec![("ema.w", &w)],
            "tensor `ema.w` is an EMA tensor but metadata field `ema` is false",
        ),
        ("ema", Some("false"), vec![("other.w", &w)], "tensor `other.w` is under none of"),
    ];
    for (i, (field, value, tensors, needle)) in cases.into_iter().enumerate() {
        let mut meta = good.metadata();
        match value {
            Some(v) => meta.insert(field.to_string(), v.to_string()),
            None => meta.remove(field),
        };
        let path = dir.path().join(format!("bad_train{i}.safetensors"));
        checkpoint::save(&path, &tensors, &meta).unwrap();
        let msg = checkpoint_msg(TrainingCheckpoint::load(&path).unwrap_err());
        assert!(msg.contains(needle), "case {i}: expected `{needle}` in `{msg}`");
    }
    // A plain weights file is not a training checkpoint.
    let path = dir.path().join("plain.safetensors");
    checkpoint::save(&path, &[("w", &w)], &no_meta()).unwrap();
    let msg = checkpoint_msg(TrainingCheckpoint::load(&path).unwrap_err());
    assert!(msg.contains("metadata field `format` is missing"), "{msg}");
}

// ---------- fuzzing ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Corrupting bytes of the length prefix or the header never panics: the file is either rejected
    /// with a typed error or accepted, and then every tensor is readable or a typed error.
    #[test]
    fn corrupt_header_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut file = checkpoint::serialize(&zoo()[..6], &BTreeMap::from([("k".into(), "v".into())])).unwrap();
        let n = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
        for (at, byte) in edits {
            let i = at.index(n);
            file[i] = byte;
        }
        if let Some(c) = cut {
            file.truncate(c.index(file.len() + 1));
        }
        match SafeTensors::from_bytes(file, "fuzz") {
            Ok(st) => {
                for name in st.names() {
                    match st.get(name) {
                        Ok(t) => prop_assert_eq!(t.shape(), &st.info(name).unwrap().shape[..]),
                        Err(e) => {
                            let typed = matches!(e, Error::Checkpoint { .. });
                            prop_assert!(typed, "{:?}", e);
                        }
                    }
                }
            }
            Err(e) => {
                let typed = matches!(e, Error::Checkpoint { .. });
                prop_assert!(typed, "{:?}", e);
            }
        }
    }
}
