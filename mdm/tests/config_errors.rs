//! Malformed configurations are rejected with a typed error naming the field.

mod common;

use mdm::{ConfigError, ModelConfig};

fn field_of(text: &str) -> String {
    match ModelConfig::from_toml_str(text, "test.toml") {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

const S2: &str = include_str!("../../configs/s2.toml");

#[test]
fn shipped_configs_load_and_round_trip() {
    for name in ["s2.toml", "mdm-64.toml", "mdm-256.toml", "mdm-1024.toml"] {
        let c = common::config(name);
        let again = ModelConfig::from_toml_str(&c.to_toml().unwrap(), name).unwrap();
        assert_eq!(again, c, "{name}");
    }
    assert_eq!(common::config("mdm-1024.toml").levels().len(), 3);
}

#[test]
fn errors_name_the_field() {
    // channels not a multiple of the GroupNorm groups
    assert_eq!(field_of(&S2.replace("[32, 64]", "[32, 48]")), "unet.resolution_channels[1]");
    // list length differs from the number of levels
    assert_eq!(
        field_of(&S2.replace(
            "num_resnets_per_resolution = [1, 1]\ntemporal_dim",
            "num_resnets_per_resolution = [1]\ntemporal_dim"
        )),
        "unet.num_resnets_per_resolution"
    );
    assert_eq!(
        field_of(&S2.replace("num_attention_layers = [0, 1]", "num_attention_layers = [1]")),
        "unet.inner.num_attention_layers"
    );
    // nested temporal dims differ (inner default is 4·64 = 256; make the outer 512)
    assert_eq!(field_of(&S2.replace("temporal_dim = 256", "temporal_dim = 512")), "unet.inner.temporal_dim");
    // attention level out of range
    assert_eq!(
        field_of(&S2.replace("attention_levels = [1]", "attention_levels = [2]")),
        "unet.inner.attention_levels[0]"
    );
    // text options on an outer level
    assert_eq!(
        field_of(&S2.replace(
            "skip_normalization = true",
            "skip_normalization = true\nconditioning_feature_proj_dim = 8"
        )),
        "unet.conditioning_feature_proj_dim"
    );
    // nested levels cannot have middle blocks
    assert_eq!(
        field_of(&S2.replace("skip_normalization = true", "skip_mid_blocks = false")),
        "unet.skip_mid_blocks"
    );
    // micro-conditioning default must be > 0
    assert_eq!(
        field_of(&S2.replace("default = 16.0", "default = 0.0")),
        "unet.inner.micro_conditioning[0].default"
    );
    // class labels need a conditioning width
    assert_eq!(
        field_of("num_classes = 10\n[unet]\nresolution_channels = [32]\nnum_resnets_per_resolution = [1]\n"),
        "num_classes"
    );
    // attention channels must be multiples of 32 even when num_groups_norm allows 16
    assert_eq!(
        field_of(
            "[unet]\nresolution_channels = [16]\nnum_groups_norm = 8\nnum_resnets_per_resolution = [1]\n"
        ),
        "unet.resolution_channels[0]"
    );
}

#[test]
fn parse_errors_name_the_source() {
    match ModelConfig::from_toml_str(
        &S2.replace("resolution_channels = [32, 64]", "resolution_chanels = [32, 64]"),
        "bad.toml",
    ) {
        Err(ConfigError::Parse { source_name, msg }) => {
            assert_eq!(source_name, "bad.toml");
            assert!(msg.contains("resolution_chanels"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    match ModelConfig::from_file("/nonexistent/model.toml") {
        Err(ConfigError::Io { path, .. }) => assert_eq!(path, "/nonexistent/model.toml"),
        other => panic!("{other:?}"),
    }
}
