//! Parameter names, shapes and counts against the MDM spec §3.5, §3.7 and §8.

mod common;

use mdm::{Mdm, count_params};
use nn::Module;
use std::collections::BTreeMap;

fn shapes(m: &Mdm) -> BTreeMap<String, Vec<usize>> {
    m.named_params().into_iter().map(|(n, p)| (n, p.value().shape().to_vec())).collect()
}

#[test]
fn s2_has_the_spec_parameter_count() {
    let cfg = common::config("s2.toml");
    // spec §3.7: 4 505 862, computed with ml-mdm's own constructors
    assert_eq!(count_params(&cfg), 4_505_862);
    let m = Mdm::new(&cfg, 1).unwrap();
    assert_eq!(m.num_params(), 4_505_862);
}

#[test]
fn s2_names_and_shapes_match_spec_section_8() {
    let m = Mdm::new(&common::config("s2.toml"), 2).unwrap();
    let s = shapes(&m);
    let expect: &[(&str, &[usize])] = &[
        ("temb_layer1.weight", &[256, 64]),
        ("temb_layer1.bias", &[256]),
        ("temb_layer2.weight", &[256, 256]),
        ("cond_layers.scale.0.weight", &[256, 64]),
        ("cond_layers.scale.1.weight", &[256, 256]),
        ("cond_layers.scale.1.bias", &[256]),
        ("conv_in.weight", &[32, 3, 3, 3]),
        ("conv_in.bias", &[32]),
        ("norm_out.weight", &[32]),
        ("norm_out.bias", &[32]),
        ("conv_out.weight", &[3, 32, 3, 3]),
        ("conv_out.bias", &[3]),
        ("down_blocks.0.resnets.0.norm1.weight", &[32]),
        ("down_blocks.0.resnets.0.conv1.weight", &[32, 32, 3, 3]),
        ("down_blocks.0.resnets.0.time_layer.weight", &[64, 256]),
        ("down_blocks.0.resnets.0.norm2.weight", &[32]),
        ("down_blocks.0.resnets.0.conv2.weight", &[32, 32, 3, 3]),
        ("down_blocks.0.resample.weight", &[32, 32, 3, 3]),
        ("down_blocks.0.resample.bias", &[32]),
        ("down_blocks.1.resnets.0.conv1.weight", &[64, 32, 3, 3]),
        ("down_blocks.1.resnets.0.time_layer.weight", &[128, 256]),
        ("down_blocks.1.resnets.0.conv3.weight", &[64, 32, 1, 1]),
        ("up_blocks.0.resnets.0.norm1.weight", &[128]),
        ("up_blocks.0.resnets.0.conv1.weight", &[64, 128, 3, 3]),
        ("up_blocks.0.resnets.0.conv3.weight", &[64, 128, 1, 1]),
        ("up_blocks.0.resnets.1.norm1.weight", &[96]),
        ("up_blocks.0.resnets.1.conv1.weight", &[64, 96, 3, 3]),
        ("up_blocks.0.resnets.1.conv3.weight", &[64, 96, 1, 1]),
        ("up_blocks.0.resample.weight", &[64, 64, 3, 3]),
        ("up_blocks.1.resnets.0.norm1.weight", &[96]),
        ("up_blocks.1.resnets.0.conv1.weight", &[32, 96, 3, 3]),
        ("up_blocks.1.resnets.0.time_layer.weight", &[64, 256]),
        ("up_blocks.1.resnets.1.norm1.weight", &[64]),
        ("up_blocks.1.resnets.1.conv3.weight", &[32, 64, 1, 1]),
        ("inner_unet.temb_layer1.weight", &[256, 64]),
        ("inner_unet.temb_layer2.weight", &[256, 256]),
        ("inner_unet.cond_emb.weight", &[256, 64]),
        ("inner_unet.cond_layers.scale.0.weight", &[256, 64]),
        ("inner_unet.cond_layers.scale.1.weight", &[256, 256]),
        ("inner_unet.conv_in.weight", &[64, 3, 3, 3]),
        ("inner_unet.norm_out.weight", &[64]),
        ("inner_unet.conv_out.weight", &[3, 64, 3, 3]),
        ("inner_unet.down_blocks.0.resnets.0.conv1.weight", &[64, 64, 3, 3]),
        ("inner_unet.down_blocks.0.resnets.0.time_layer.weight", &[128, 256]),
        ("inner_unet.down_blocks.0.resample.weight", &[64, 64, 3, 3]),
        ("inner_unet.down_blocks.1.resnets.0.conv1.weight", &[128, 64, 3, 3]),
        ("inner_unet.down_blocks.1.resnets.0.time_layer.weight", &[256, 256]),
        ("inner_unet.down_blocks.1.resnets.0.conv3.weight", &[128, 64, 1, 1]),
        ("inner_unet.down_blocks.1.attn.0.norm.weight", &[128]),
        ("inner_unet.down_blocks.1.attn.0.qkv.weight", &[384, 128, 1, 1]),
        ("inner_unet.down_blocks.1.attn.0.qkv.bias", &[384]),
        ("inner_unet.down_blocks.1.attn.0.norm_cond.weight", &[64]),
        ("inner_unet.down_blocks.1.attn.0.norm_cond.bias", &[64]),
        ("inner_unet.down_blocks.1.attn.0.kv_cond.weight", &[256, 64]),
        ("inner_unet.down_blocks.1.attn.0.kv_cond.bias", &[256]),
        ("inner_unet.down_blocks.1.attn.0.proj_out.weight", &[128, 128, 1, 1]),
        ("inner_unet.down_blocks.1.attn.0.ffn.0.weight", &[128]),
        ("inner_unet.down_blocks.1.attn.0.ffn.1.weight", &[512, 128, 1, 1]),
        ("inner_unet.down_blocks.1.attn.0.ffn.3.weight", &[128, 512, 1, 1]),
        ("inner_unet.down_blocks.1.attn.0.ffn.3.bias", &[128]),
        ("inner_unet.mid_blocks.0.resnets.0.conv1.weight", &[128, 128, 3, 3]),
        ("inner_unet.mid_blocks.0.resnets.0.time_layer.weight", &[256, 256]),
        ("inner_unet.mid_blocks.0.attn.0.qkv.weight", &[384, 128, 1, 1]),
        ("inner_unet.mid_blocks.0.attn.0.kv_cond.weight", &[256, 64]),
        ("inner_unet.mid_blocks.1.resnets.0.conv2.weight", &[128, 128, 3, 3]),
        ("inner_unet.up_blocks.0.resnets.0.norm1.weight", &[256]),
        ("inner_unet.up_blocks.0.resnets.0.conv1.weight", &[128, 256, 3, 3]),
        ("inner_unet.up_blocks.0.resnets.0.conv3.weight", &[128, 256, 1, 1]),
        ("inner_unet.up_blocks.0.resnets.1.norm1.weight", &[192]),
        ("inner_unet.up_blocks.0.resnets.1.conv3.weight", &[128, 192, 1, 1]),
        ("inner_unet.up_blocks.0.attn.0.qkv.weight", &[384, 128, 1, 1]),
        ("inner_unet.up_blocks.0.attn.1.kv_cond.weight", &[256, 64]),
        ("inner_unet.up_blocks.0.resample.weight", &[128, 128, 3, 3]),
        ("inner_unet.up_blocks.1.resnets.0.norm1.weight", &[192]),
        ("inner_unet.up_blocks.1.resnets.0.conv1.weight", &[64, 192, 3, 3]),
        ("inner_unet.up_blocks.1.resnets.0.time_layer.weight", &[128, 256]),
        ("inner_unet.up_blocks.1.resnets.1.norm1.weight", &[128]),
        ("inner_unet.up_blocks.1.resnets.1.conv3.weight", &[64, 128, 1, 1]),
        ("inner_unet.lm_proj.weight", &[64, 48]),
        ("inner_unet.lm_proj.bias", &[64]),
        ("in_adapter.weight", &[64, 64, 3, 3]),
        ("in_adapter.bias", &[64]),
        ("out_adapter.weight", &[64, 64, 3, 3]),
        ("out_adapter.bias", &[64]),
    ];
    for (name, shape) in expect {
        assert_eq!(s.get(*name).map(|v| v.as_slice()), Some(*shape), "{name}");
    }
    // absent tensors: no bias on cond_emb, no conv3 where in == out, no outer cond_emb / lm_proj /
    // mid blocks / attention, no attention at inner level 0, no inner up_blocks.1.attn
    for absent in [
        "inner_unet.cond_emb.bias",
        "down_blocks.0.resnets.0.conv3.weight",
        "inner_unet.mid_blocks.0.resnets.0.conv3.weight",
        "cond_emb.weight",
        "lm_proj.weight",
        "mid_blocks.0.resnets.0.conv1.weight",
        "down_blocks.1.attn.0.qkv.weight",
        "inner_unet.down_blocks.0.attn.0.qkv.weight",
        "inner_unet.up_blocks.1.attn.0.qkv.weight",
        "inner_unet.in_adapter.weight",
    ] {
        assert!(!s.contains_key(absent), "{absent} should not exist");
    }
    // tensor count (weight + bias each; ResNet 10, +2 with conv3; attention with cross + FFN 16):
    // outer: temb 4 + micro 4 + conv_in/norm_out/conv_out 6; down 10+2, 12; up 12+12+2, 12+12 = 88
    // inner: 4 + cond_emb 1 + 4 + 6; down 10+2, 12+16; mid 10+16, 10; up 12+12+16+16+2, 12+12;
    //        lm_proj 2 = 175
    // adapters 4
    assert_eq!(s.len(), 88 + 175 + 4);
    // ordering follows PyTorch registration: outer first, inner_unet, then the adapters
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "temb_layer1.weight");
    assert_eq!(names[names.len() - 1], "out_adapter.bias");
    assert_eq!(names[names.len() - 5], "inner_unet.lm_proj.bias");
}

#[test]
fn config_count_equals_built_count() {
    let cfg = common::config("s2.toml");
    assert_eq!(count_params(&cfg), Mdm::new(&cfg, 3).unwrap().num_params());
    // a variant exercising class embedding, masked attention, several attention layers, no FFN,
    // three nesting levels and an unconditioned outer micro key
    let mut cfg = common::config("s2.toml");
    cfg.num_classes = 10;
    let inner = cfg.unet.inner.as_mut().unwrap();
    inner.use_attention_ffn = false;
    inner.num_attention_layers = vec![0, 2];
    inner.masked_cross_attention = Some(true);
    let core = (**inner).clone();
    inner.inner = Some(Box::new(core));
    inner.skip_normalization = Some(false);
    inner.conditioning_feature_proj_dim = 0;
    inner.masked_cross_attention = None;
    inner.attention_levels = vec![];
    inner.num_attention_layers = vec![];
    inner.micro_conditioning.push(mdm::MicroCondition { key: "aspect".into(), default: 1.0 });
    cfg.validate().unwrap();
    assert_eq!(count_params(&cfg), Mdm::new(&cfg, 4).unwrap().num_params());
}

#[test]
fn released_configs_count_as_in_the_spec() {
    // spec §3.5: 461.4 M / 476.6 M / 481.0 M, shown to 0.1 M
    for (name, millions) in [("mdm-64.toml", 461.4), ("mdm-256.toml", 476.6), ("mdm-1024.toml", 481.0)] {
        let n = count_params(&common::config(name)) as f64 / 1e6;
        assert!((n - millions).abs() < 0.05, "{name}: {n:.3} M, spec {millions} M");
    }
}
