"""Bad stack files: each gets an error naming the key as written and the fix (the README promises it)."""

from __future__ import annotations

import pytest

from stacks import SpecErrors, load_stack_file


def errors_for(path, **kwargs) -> list:
    with pytest.raises(SpecErrors) as info:
        load_stack_file(path, **kwargs)
    return info.value.errors


def only(errors, key):
    matching = [e for e in errors if e.key == key]
    assert matching, f"no error for {key}: {[str(e) for e in errors]}"
    return matching[0]


def test_base_stack_is_valid(stack_file):
    spec = load_stack_file(stack_file())
    assert spec.machine.name == "g2-standard-8" and spec.tensor_parallel == 1
    assert spec.accelerator == "nvidia-l4" and spec.usd_per_hour == pytest.approx(0.8536)


def test_unknown_gpu_says_did_you_mean(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:accelerator": {"machineType": None, "gpu": "nvidia-l5"}})),
        "gke-llm-bench:accelerator.gpu",
    )
    assert 'did you mean "nvidia-l4"' in e.message and "nvidia-h100-80gb" in e.fix


def test_unknown_machine_type(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:accelerator": {"machineType": "g2-standard-9"}})),
        "gke-llm-bench:accelerator.machineType",
    )
    assert "did you mean" in e.message


def test_unknown_model_server_and_precision(stack_file):
    errors = errors_for(
        stack_file(
            {
                "gke-llm-bench:model": {"name": "llama-2-7"},
                "gke-llm-bench:server": {"kind": "vllmm"},
                "gke-llm-bench:precision": "bf61",
            }
        )
    )
    assert 'did you mean "llama-2-7b"' in only(errors, "gke-llm-bench:model.name").message
    assert 'did you mean "vllm"' in only(errors, "gke-llm-bench:server.kind").message
    assert 'did you mean "bf16"' in only(errors, "gke-llm-bench:precision.weights").message


def test_unknown_config_key_typo(stack_file):
    errors = errors_for(stack_file({"gke-llm-bench:server": {"maxBacth": 64}}))
    e = only(errors, "gke-llm-bench:server.maxBacth")
    assert 'did you mean "maxBatch"' in e.message


def test_unknown_top_level_key_and_namespace(stack_file):
    errors = errors_for(stack_file({"gke-llm-bench:acelerator": {"gpu": "nvidia-l4"}, "gke-llm-bnech:x": 1}))
    assert 'did you mean "accelerator"' in only(errors, "gke-llm-bench:acelerator").message
    assert "unknown config namespace" in only(errors, "gke-llm-bnech:x").message


def test_wrong_type_string_for_number(stack_file):
    e = only(errors_for(stack_file({"gke-llm-bench:server": {"maxBatch": "64"}})), "gke-llm-bench:server.maxBatch")
    assert "expected a int" in e.message and "str" in e.message and "no quotes" in e.fix


def test_machine_type_incompatible_with_gpu_count(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:accelerator": {"gpusPerNode": 2}})),
        "gke-llm-bench:accelerator.gpusPerNode",
    )
    assert "g2-standard-8 has 1" in e.message and "g2-standard-24 (2)" in e.fix
    e = only(
        errors_for(
            stack_file({"gke-llm-bench:accelerator": {"machineType": None, "gpu": "nvidia-l4", "gpusPerNode": 3}})
        ),
        "gke-llm-bench:accelerator.gpusPerNode",
    )
    assert "no machine type carries 3" in e.message


def test_tp_must_divide_heads_and_fit_on_a_node(stack_file):
    e = only(
        errors_for(
            stack_file(
                {
                    "gke-llm-bench:accelerator": {"machineType": "g2-standard-96"},
                    "gke-llm-bench:model": {"name": "falcon-7b"},
                    "gke-llm-bench:server": {"tensorParallel": 2, "maxModelLen": 2048},
                }
            )
        ),
        "gke-llm-bench:server.tensorParallel",
    )
    assert "71 attention heads" in e.message and "use one of: 1" in e.fix
    e = only(
        errors_for(stack_file({"gke-llm-bench:server": {"tensorParallel": 2}})), "gke-llm-bench:server.tensorParallel"
    )
    assert "exceeds the 1 GPU(s) per node" in e.message


def test_quantization_the_server_does_not_support(stack_file):
    errors = errors_for(
        stack_file(
            {
                "gke-llm-bench:accelerator": {"machineType": None, "tpu": {"topology": "2x2"}},
                "gke-llm-bench:model": {"name": "gemma-7b"},
                "gke-llm-bench:precision": "awq",
                "gke-llm-bench:server": {"kind": "jetstream"},
            }
        )
    )
    assert "jetstream does not serve awq" in only(errors, "gke-llm-bench:precision.weights").message
    # fp8 needs FP8 tensor cores for TGI; the A100 has none
    errors = errors_for(
        stack_file(
            {
                "gke-llm-bench:accelerator": {"machineType": "a2-highgpu-1g"},
                "gke-llm-bench:precision": "fp8",
                "gke-llm-bench:server": {"kind": "tgi"},
            }
        )
    )
    e = only(errors, "gke-llm-bench:precision.weights")
    assert "fp8 on compute capability 8.9 and newer; A100 40GB is 8.0" in e.message
    assert "L4" in e.fix and "H100" in e.fix


def test_encoder_decoder_model_on_vllm_is_rejected(stack_file):
    errors = errors_for(
        stack_file({"gke-llm-bench:model": {"name": "flan-t5-xxl"}, "gke-llm-bench:server": {"maxModelLen": 512}})
    )
    e = only(errors, "gke-llm-bench:server.kind")
    assert "does not run t5" in e.message and "tgi" in e.fix


def test_gated_model_without_hf_token(stack_file):
    errors = errors_for(stack_file({"gke-llm-bench:secrets": {"hfToken": None}}))
    assert "gated" in only(errors, "gke-llm-bench:secrets.hfToken").message
    # declared but not set: a warning offline, an error when checking for deployment
    path = stack_file()
    assert any("hfToken is not set" in w for w in load_stack_file(path).warnings)
    e = only(errors_for(path, require_secrets=True), "gke-llm-bench:hfToken")
    assert "pulumi config set --secret hfToken" in e.fix
    secured = stack_file({"gke-llm-bench:hfToken": {"secure": "v1:abc"}})
    assert load_stack_file(secured, require_secrets=True).hf_token_key == "hfToken"


def test_plaintext_secret_is_rejected_and_never_echoed(stack_file):
    errors = errors_for(stack_file({"gke-llm-bench:hfToken": "hf_plaintext_value"}))
    e = only(errors, "gke-llm-bench:hfToken")
    assert "plaintext" in e.message and "--secret" in e.fix
    assert all("hf_plaintext_value" not in str(err) for err in errors)


def test_max_model_len_beyond_context(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:server": {"maxModelLen": 8192}})), "gke-llm-bench:server.maxModelLen"
    )
    assert "exceeds" in e.message and "4096" in e.fix


def test_model_does_not_fit_lists_cheapest_alternatives(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:model": {"name": "llama-2-70b"}})),
        "gke-llm-bench:accelerator.machineType",
    )
    assert "needs 138.0 GB" in e.message and "allows 19.2 GB" in e.message
    assert e.fix.startswith("cheapest that fit: ")
    prices = [float(p.split("$")[1].split("/")[0]) for p in e.fix.split("; ")]
    assert prices == sorted(prices) and len(prices) >= 3
    assert "g2-standard-48 (4x L4, fp8, TP=4)" in e.fix  # 4 x L4 hold 69 GB of fp8 weights within 80 %


def test_spot_with_specific_reservation(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:accelerator": {"spot": True, "reservation": "my-res"}})),
        "gke-llm-bench:accelerator.reservation",
    )
    assert "spot" in e.message


def test_external_exposure_needs_allowlist_and_api_key(stack_file):
    errors = errors_for(
        stack_file({"gke-llm-bench:exposure": {"mode": "external"}, "gke-llm-bench:secrets": {"apiKey": None}})
    )
    assert only(errors, "gke-llm-bench:exposure.allowlist")
    assert only(errors, "gke-llm-bench:secrets.apiKey")
    errors = errors_for(stack_file({"gke-llm-bench:exposure": {"mode": "external", "allowlist": ["0.0.0.0/0", "x"]}}))
    assert "whole internet" in only(errors, "gke-llm-bench:exposure.allowlist[0]").message
    assert "not a CIDR" in only(errors, "gke-llm-bench:exposure.allowlist[1]").message
    ok = load_stack_file(
        stack_file(
            {
                "gke-llm-bench:exposure": {"mode": "external", "allowlist": ["203.0.113.0/24"]},
                "gke-llm-bench:apiKey": {"secure": "v1:x"},
            }
        )
    )
    assert ok.api_key_key == "apiKey" and ok.allowlist == ("203.0.113.0/24",)


def test_zero_and_negative_counts(stack_file):
    errors = errors_for(
        stack_file(
            {"gke-llm-bench:accelerator": {"nodeCount": 0}, "gke-llm-bench:server": {"replicas": -1, "maxBatch": 0}}
        )
    )
    for key in ("accelerator.nodeCount", "server.replicas", "server.maxBatch"):
        assert "greater than 0" in only(errors, f"gke-llm-bench:{key}").message


def test_tpu_server_on_gpu_and_gpu_server_on_tpu(stack_file):
    e = only(
        errors_for(
            stack_file({"gke-llm-bench:server": {"kind": "jetstream"}, "gke-llm-bench:model": {"name": "gemma-7b"}})
        ),
        "gke-llm-bench:server.kind",
    )
    assert "runs on TPUs" in e.message
    e = only(
        errors_for(
            stack_file(
                {
                    "gke-llm-bench:accelerator": {"machineType": None, "tpu": {"topology": "2x2"}},
                    "gke-llm-bench:model": {"name": "gemma-7b"},
                }
            )
        ),
        "gke-llm-bench:server.kind",
    )
    assert "runs on GPUs" in e.message and "jetstream" in e.fix


def test_a3_small_shapes_need_spot_or_flex_start(stack_file):
    e = only(
        errors_for(stack_file({"gke-llm-bench:accelerator": {"machineType": "a3-highgpu-1g"}})),
        "gke-llm-bench:accelerator.machineType",
    )
    assert "spot or flex-start" in e.message
    spec = load_stack_file(stack_file({"gke-llm-bench:accelerator": {"machineType": "a3-highgpu-1g", "spot": True}}))
    assert spec.spot and spec.usd_per_hour == pytest.approx(3.8609)


def test_every_error_is_listed_at_once(stack_file):
    errors = errors_for(
        stack_file(
            {
                "gke-llm-bench:accelerator": {"machineType": "g2-standard-9"},
                "gke-llm-bench:server": {"kind": "tgx", "replicas": 0},
                "gke-llm-bench:model": {"name": "lama"},
            }
        )
    )
    keys = {e.key for e in errors}
    assert {"gke-llm-bench:accelerator.machineType", "gke-llm-bench:server.kind", "gke-llm-bench:model.name"} <= keys


def test_structural_errors_are_all_listed_too(stack_file):
    errors = errors_for(stack_file({"gke-llm-bench:server": {"maxBacth": 1, "replicas": "two"}, "gcp:project": None}))
    keys = {e.key for e in errors}
    assert {"gke-llm-bench:server.maxBacth", "gke-llm-bench:server.replicas", "gcp:project"} <= keys


def test_derivations_machine_from_gpu_and_checkpoint_from_precision(stack_file):
    spec = load_stack_file(stack_file({"gke-llm-bench:accelerator": {"machineType": None, "gpu": "nvidia-l4"}}))
    assert spec.machine.name == "g2-standard-4"  # cheapest L4 shape that holds 13.5 GB
    spec = load_stack_file(
        stack_file(
            {
                "gke-llm-bench:accelerator": {"machineType": None, "gpu": "nvidia-l4"},
                "gke-llm-bench:model": {"name": "llama-2-70b"},
                "gke-llm-bench:precision": "fp8",
            }
        )
    )
    assert spec.machine.name == "g2-standard-48" and spec.tensor_parallel == 4
    spec = load_stack_file(stack_file({"gke-llm-bench:precision": "awq"}))
    assert spec.checkpoint == "TheBloke/Llama-2-7B-AWQ" and any("accuracy" in w for w in spec.warnings)


def test_custom_architecture_model(stack_file):
    arch = {
        "params": 1_000_000_000,
        "layers": 16,
        "hidden": 2048,
        "heads": 16,
        "kvHeads": 4,
        "headDim": 128,
        "ffn": 8192,
        "vocab": 32000,
        "maxContext": 2048,
    }
    spec = load_stack_file(
        stack_file(
            {
                "gke-llm-bench:model": {"name": None, "hfId": "acme/tiny-1b", "architecture": arch},
                "gke-llm-bench:server": {"maxModelLen": None},
            }
        )
    )
    assert spec.model.params == 1_000_000_000 and spec.max_model_len == 2048 and not spec.model.gated
    e = only(
        errors_for(stack_file({"gke-llm-bench:model": {"name": None, "hfId": "acme/unknown"}})),
        "gke-llm-bench:model.hfId",
    )
    assert "architecture" in e.fix


def test_tpu_stack_resolves(stack_file):
    spec = load_stack_file(
        stack_file(
            {
                "gke-llm-bench:accelerator": {"machineType": None, "tpu": {"topology": "2x2"}},
                "gke-llm-bench:model": {"name": "gemma-7b"},
                "gke-llm-bench:server": {"kind": "jetstream"},
            }
        )
    )
    assert spec.machine.name == "ct5lp-hightpu-4t" and spec.tensor_parallel == 4
    assert spec.accelerator == "tpu-v5-lite-podslice" and spec.usd_per_hour == pytest.approx(4.80)


def test_bad_yaml_and_missing_config(stack_file):
    assert "not valid YAML" in errors_for(stack_file(raw="config: [unclosed"))[0].message
    assert "no `config:` mapping" in errors_for(stack_file(raw="foo: 1\n"))[0].message


@pytest.mark.parametrize(("section", "key", "value", "fix"), [
    ("gke-llm-bench:cluster", "name", "LLM_Bench", "1-40 characters"),
    ("gke-llm-bench:cluster", "name", "a" * 41, "1-40 characters"),
    ("gke-llm-bench:cluster", "name", "bench-", "not ending with a hyphen"),
    ("gke-llm-bench:server", "namespace", "My.Namespace", "at most 63"),
])
def test_names_that_gke_or_kubernetes_would_refuse(stack_file, section, key, value, fix):
    changes = {section: {key: value}}
    if section == "gke-llm-bench:server":
        changes = {section: {"kind": "vllm", key: value}}
    e = only(errors_for(stack_file(changes)), f"{section}.{key}")
    assert fix in e.fix


def test_names_default_to_the_stack_so_stacks_coexist(stack_file):
    spec = load_stack_file(stack_file(name="my-stack"))
    assert (spec.names.cluster, spec.namespace, spec.names.node_pool) == \
        ("llmb-my-stack", "llm-my-stack", "gpu-my-stack")


def test_jetstream_cannot_be_exposed_externally(stack_file):
    changes = {"gke-llm-bench:accelerator": {"machineType": "ct5lp-hightpu-4t", "tpu": {"topology": "2x2"}},
               "gke-llm-bench:model": {"name": "gemma-7b"}, "gke-llm-bench:server": {"kind": "jetstream"},
               "gke-llm-bench:exposure": {"mode": "external", "allowlist": ["203.0.113.0/24"]}}
    e = only(errors_for(stack_file(changes)), "gke-llm-bench:exposure.mode")
    assert "no authentication" in e.message and "internal" in e.fix


CANARY = "hf_" + "Zq7" * 12  # token-shaped, never a real one


def test_a_token_pasted_into_a_secret_name_slot_is_refused_without_echo(stack_file):
    with pytest.raises(SpecErrors) as info:
        load_stack_file(stack_file({"gke-llm-bench:secrets": {"hfToken": CANARY}}))
    text = info.value.render()
    assert CANARY not in text and "gke-llm-bench:secrets.hfToken" in text and "revoke" in text


def test_type_errors_do_not_echo_secret_looking_values(stack_file):
    with pytest.raises(SpecErrors) as info:
        load_stack_file(stack_file({"gke-llm-bench:server": {"kind": "vllm", "maxBatch": CANARY}}))
    text = info.value.render()
    assert CANARY not in text and "gke-llm-bench:server.maxBatch" in text and "<redacted>" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--api-key", "x"], "credential"),
    ([f"--hf-token={CANARY}"], "credential"),
    (["--max-num-seqs", "8"], "--max-num-seqs is set from the stack spec"),
    (["--max-model-len=2048"], "--max-model-len is set from the stack spec"),
])
def test_extra_args_carry_no_secret_and_repeat_no_managed_flag(stack_file, args, message):
    with pytest.raises(SpecErrors) as info:
        load_stack_file(stack_file({"gke-llm-bench:server": {"kind": "vllm", "extraArgs": args}}))
    text = info.value.render()
    assert message in text and CANARY not in text


def test_harmless_extra_args_pass(stack_file):
    spec = load_stack_file(stack_file({"gke-llm-bench:server": {"kind": "vllm", "extraArgs": ["--seed", "7"]}}))
    assert spec.extra_args == ("--seed", "7")


# -- the file itself: every problem names the file and line, by check, plan and diff alike ---------
def _base_text(stack_file) -> str:
    return stack_file().read_text()


@pytest.mark.parametrize(("mutate", "message", "fix"), [
    (lambda t: t.replace("  gcp:region:", "\tgcp:region:"), "line", "tabs"),
    (lambda t: t.replace("  gcp:region: us-central1\n", "  gcp:region: us-central1\n  gcp:region: us-east1\n"),
     "appears twice", "write the key once"),
    (lambda t: t + "  gke-llm-bench:cost: {onDemandPerHour: [1, 2\n", "line", "YAML syntax"),
    (lambda t: "a: &x [1, 2]\nb: [*x, *x]\n" + t, "alias", "anchor"),
])
def test_bad_yaml_is_reported_with_its_line(stack_file, mutate, message, fix):
    path = stack_file(raw=mutate(_base_text(stack_file)))
    e = only(errors_for(path), "(file)")
    assert message in e.message and fix in e.fix


def test_a_file_that_is_not_utf8_names_the_line(stack_file):
    path = stack_file()
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    e = only(errors_for(path), "(file)")
    assert "is not UTF-8" in e.message and "line" in e.message


def test_an_alias_bomb_is_refused_quickly(stack_file):
    bomb = "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    e = only(errors_for(stack_file(raw=bomb + _base_text(stack_file))), "(file)")
    assert "alias" in e.message


# -- values ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "key", "part"), [
    ({"gke-llm-bench:cost": {"onDemandPerHour": float("inf")}}, "gke-llm-bench:cost.onDemandPerHour", "finite"),
    ({"gke-llm-bench:server": {"kind": "vllm", "gpuMemoryUtilization": float("nan")}},
     "gke-llm-bench:server.gpuMemoryUtilization", "finite"),
    ({"gke-llm-bench:cost": {"onDemandPerHour": -3.0}}, "gke-llm-bench:cost.onDemandPerHour", "greater than 0"),
    ({"gcp:project": "My_Project"}, "gcp:project", "project id"),
    ({"gcp:zones": ["us-central1-a", "us-central1-b"]}, "gcp:zones", "together with gcp:zone"),
    ({"gke-llm-bench:model": {"name": "llama-2-7b", "hfId": "meta-llama/Llama-2-70b-hf"}},
     "gke-llm-bench:model.hfId", "llama-2-70b"),
    ({"gke-llm-bench:accelerator": {"queuedProvisioning": True, "spot": True}}, "gke-llm-bench:accelerator.spot",
     "queuedProvisioning"),
    ({"gke-llm-bench:accelerator": {"queuedProvisioning": True, "nodeCount": None,
                                    "autoscaling": {"min": 1, "max": 2}}},
     "gke-llm-bench:accelerator.autoscaling.min", "scale from zero"),
    ({"gke-llm-bench:model": {"name": None, "hfId": "my-org/custom", "architecture": {
        "params": 7000000000, "layers": 32, "hidden": 4096, "heads": 32, "kvHeads": 6, "headDim": 128,
        "ffn": 11008, "vocab": 32000, "maxContext": 4096}}}, "gke-llm-bench:model.architecture.kvHeads", "divide"),
])
def test_values_a_real_deployment_would_refuse(stack_file, changes, key, part):
    e = only(errors_for(stack_file(changes)), key)
    assert part in e.message


def test_jetstream_without_a_maxtext_recipe_is_refused_at_check(stack_file):
    changes = {"gke-llm-bench:accelerator": {"machineType": "ct5lp-hightpu-4t", "tpu": {"topology": "2x2"}},
               "gke-llm-bench:model": {"name": "mistral-7b"}, "gke-llm-bench:server": {"kind": "jetstream"}}
    e = only(errors_for(stack_file(changes)), "gke-llm-bench:model.name")
    assert "no recipe" in e.message and "gemma-7b" in e.fix


def test_fp4_formats_follow_the_gpu_generation(stack_file):
    """nvfp4 needs FP4 tensor cores (Blackwell); mxfp4 runs on Ampere and newer (Marlin kernels)."""
    base = {"gke-llm-bench:model": {"name": "gpt-oss-120b"},
            "gke-llm-bench:server": {"kind": "vllm", "maxModelLen": 4096}}
    errors = errors_for(stack_file({**base, "gke-llm-bench:accelerator": {"machineType": "a3-highgpu-1g",
                                                                          "queuedProvisioning": True},
                                    "gke-llm-bench:precision": "nvfp4",
                                    "gke-llm-bench:sizing": {"weightsShareMax": 0.9}}))
    e = next(e for e in errors if "compute capability" in e.message)
    assert e.key == "gke-llm-bench:precision.weights"
    assert "vllm serves nvfp4 on compute capability 10.0 and newer; H100 80GB is 9.0" in e.message
    assert "B200" in e.fix and "RTX PRO 6000" in e.fix and "H100" not in e.fix.split("runs it:")[1]
    # nvfp4 also needs a checkpoint stored in it: gpt-oss is published in mxfp4 only
    assert "published in mxfp4 only, not nvfp4" in str(errors)
    spec = load_stack_file(stack_file({**base, "gke-llm-bench:accelerator": {"machineType": "g4-standard-48"},
                                       "gke-llm-bench:precision": "mxfp4"}))
    assert spec.precision.name == "mxfp4" and spec.checkpoint == "openai/gpt-oss-120b"


def test_a_shape_without_a_spot_price_needs_the_stacks_price(stack_file):
    base = {"gke-llm-bench:model": {"name": "gpt-oss-120b"}, "gke-llm-bench:precision": "mxfp4",
            "gke-llm-bench:server": {"kind": "vllm", "maxModelLen": 4096},
            "gke-llm-bench:accelerator": {"machineType": "g4-standard-48", "spot": True}}
    e = only(errors_for(stack_file(base)), "gke-llm-bench:cost.spotPerHour")
    assert "no sourced spot price for g4-standard-48" in e.message and "$4.5001/h" in e.fix
    spec = load_stack_file(stack_file({**base, "gke-llm-bench:cost": {"spotPerHour": 1.9}}))
    assert spec.usd_per_hour == 1.9


def test_an_image_pinned_before_blackwell_is_refused_on_it(stack_file):
    errors = errors_for(stack_file({"gke-llm-bench:accelerator": {"machineType": "g4-standard-48"},
                                    "gke-llm-bench:server": {"kind": "tgi"}}))
    e = only(errors, "gke-llm-bench:server.kind")
    assert "not known to run on RTX PRO 6000 (compute capability 12.0" in e.message and "use vllm" in e.fix


def test_cheapest_that_fit_keeps_to_what_the_server_runs(stack_file):
    """The "did not fit" suggestions obey the same server x precision x GPU-generation rule as the
    stack itself: TGI's pinned image is refused on Blackwell and has no FP8 kernels before Ada, so
    neither is suggested for it; vLLM gets both."""
    def fix(kind: str) -> str:
        return only(errors_for(stack_file({"gke-llm-bench:model": {"name": "llama-2-70b"},
                                           "gke-llm-bench:server": {"kind": kind}})),
                    "gke-llm-bench:accelerator.machineType").fix

    tgi, vllm = fix("tgi"), fix("vllm")
    assert "RTX PRO 6000" not in tgi and "A100 80GB, awq, TP=1" in tgi
    assert "g4-standard-48 (1x RTX PRO 6000, fp8, TP=1)" in vllm


def test_a_model_published_in_one_format_is_served_in_it(stack_file):
    """gpt-oss's repositories hold MXFP4 weights only: there is nothing 16-bit to serve or quantize."""
    base = {"gke-llm-bench:accelerator": {"machineType": "g4-standard-48"},
            "gke-llm-bench:server": {"kind": "vllm", "maxModelLen": 4096}}
    e = only(errors_for(stack_file({**base, "gke-llm-bench:model": {"name": "gpt-oss-120b"},
                                    "gke-llm-bench:precision": "fp8"})), "gke-llm-bench:precision.weights")
    assert "openai/gpt-oss-120b is published in mxfp4 only, not fp8" in e.message
    assert e.fix.startswith("set precision.weights: mxfp4")
    spec = load_stack_file(stack_file({**base, "gke-llm-bench:precision": "fp8",
                                       "gke-llm-bench:accelerator": {"machineType": "a4-highgpu-8g"},
                                       "gke-llm-bench:model": {"name": "gpt-oss-120b",
                                                               "hfId": "my-org/gpt-oss-120b-fp8"}}))
    assert spec.checkpoint == "my-org/gpt-oss-120b-fp8"
