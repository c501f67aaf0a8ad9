"""Checkpoint files (no code execution on load, metadata without the net, clear errors) and run records."""
import json
import multiprocessing as mp

import pytest
import torch

from engine import checkpoints as ck
from engine.nets import Actor, Critic
from engine.records import (RunRecorder, append_experiment_log, format_log_entry, new_run_dir, read_metrics,
                            read_status, write_status)


def test_roundtrip_keeps_weights_and_metadata(tmp_path):
    actor = Actor(21, 4, logstd_init=-1.5, learn_logstd=False)
    path = tmp_path / "a.pt"
    ck.save_checkpoint(path, env_id="pickcube-lite", role="start", iteration=7, actor=actor, det_sr=0.44, stoch_sr=0.2)
    meta = ck.read_meta(path)
    assert meta["env_id"] == "pickcube-lite" and meta["role"] == "start" and meta["iteration"] == 7
    assert meta["det_sr"] == 0.44 and meta["logstd"] == pytest.approx(-1.5) and meta["obs_dim"] == 21
    back = ck.load_checkpoint(path).build_actor()
    obs = torch.randn(5, 21)
    assert torch.equal(back(obs), actor(obs))
    assert not back.logstd.requires_grad


def test_metadata_sidecar_is_ignored_when_it_does_not_match_the_file(tmp_path):
    path = tmp_path / "c.pt"
    ck.save_checkpoint(path, env_id="pickcube-lite", role="critic-expert", critic=Critic(21), gamma=0.8)
    side = tmp_path / "c.pt.json"
    meta = json.loads(side.read_text())
    meta["gamma"] = 0.5
    meta["file_size"] = 1
    side.write_text(json.dumps(meta))
    assert ck.read_meta(path)["gamma"] == 0.8


def test_a_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"meta": Evil()}, path)
    with pytest.raises(ck.CheckpointError, match="corrupt, truncated or not a playground checkpoint"):
        ck.load_checkpoint(path)


def test_truncated_and_foreign_files_give_one_line(tmp_path):
    path = tmp_path / "a.pt"
    ck.save_checkpoint(path, env_id="pickcube-lite", actor=Actor(21, 4))
    path.write_bytes(path.read_bytes()[:200])
    (tmp_path / "a.pt.json").unlink()
    with pytest.raises(ck.CheckpointError) as e:
        ck.read_meta(path)
    assert "\n" not in str(e.value) and "truncated" in str(e.value)
    other = tmp_path / "b.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ck.CheckpointError, match="not a playground checkpoint"):
        ck.load_checkpoint(other)


def test_compatibility_checks_env_and_sizes():
    meta = {"env_id": "pickcube-lite", "obs_dim": 21, "act_dim": 4}
    ck.check_compatible(meta, "pickcube-lite", 21, 4)
    with pytest.raises(ck.CheckpointError, match="trained on env 'pickcube-lite'"):
        ck.check_compatible(meta, "maniskill:PickCube-v1", 42, 4)
    with pytest.raises(ck.CheckpointError, match="21-D observations"):
        ck.check_compatible(meta, "pickcube-lite", 42, 4)


def test_roles_resolve_through_the_index_and_missing_roles_name_the_command(tmp_path):
    with pytest.raises(ck.CheckpointError, match="playground pretrain --env pickcube-lite"):
        ck.resolve_checkpoint("ckpt_76_logstd-1.5", "pickcube-lite", root=tmp_path)
    d = ck.ladder_dir("pickcube-lite", tmp_path)
    ck.save_checkpoint(d / "start.pt", env_id="pickcube-lite", role="start", actor=Actor(21, 4))
    ck.write_index("pickcube-lite", {"env_id": "pickcube-lite", "roles": {"start": {"file": "start.pt"}}}, tmp_path)
    for spec in ("start", "ckpt_76_logstd-1.5"):
        r = ck.resolve_checkpoint(spec, "pickcube-lite", root=tmp_path)
        assert r.role == "start" and r.path == d / "start.pt"
    assert ck.resolve_checkpoint("none", "pickcube-lite", root=tmp_path).path is None
    with pytest.raises(ck.CheckpointError, match="neither a role"):
        ck.resolve_checkpoint("nope.pt", "pickcube-lite", root=tmp_path)


@pytest.mark.parametrize("content", [b'{"roles": {"start": 5}}', b'{"roles": {"start": {"file": 3}}}',
                                     b'{"roles": {"start": {"file": "start.pt", "det_sr": "high"}}}',
                                     b'\xff\xfe{"roles"', b'{"roles": {"start": {"file": "s.pt"}}, "iterations": 3}'])
def test_a_damaged_index_is_one_checkpoint_error(tmp_path, content):
    """Hand-edited or damaged index.json entries are a CheckpointError naming the file and the fix
    (they used to escape as TypeError/UnicodeDecodeError: exit 70 in check and checkpoints)."""
    d = ck.ladder_dir("pickcube-lite", tmp_path)
    d.mkdir(parents=True)
    (d / "index.json").write_bytes(content)
    with pytest.raises(ck.CheckpointError, match="index.json.*playground pretrain --env pickcube-lite"):
        ck.read_index("pickcube-lite", root=tmp_path)


def test_run_dirs_made_in_the_same_second_are_distinct(tmp_path):
    dirs = {new_run_dir(tmp_path, "same name") for _ in range(5)}
    assert len(dirs) == 5 and all(d.is_dir() for d in dirs)


def test_status_and_metrics_files(tmp_path):
    rec = RunRecorder(tmp_path / "r", tensorboard=True)
    rec.status("running", pid=123, started="t0")
    rec.metrics({"iteration": 1, "env_steps": 10, "wall_s": 0.5, "sr": 0.25, "sr_at_end": 0.2, "loss": float("nan")})
    rec.close()
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write('{"iteration": 2, "env_st')  # a writer caught mid-line
    rows = read_metrics(tmp_path / "r")
    assert rows == [{"iteration": 1, "env_steps": 10, "wall_s": 0.5, "sr": 0.25, "sr_at_end": 0.2, "loss": None}]
    st = write_status(tmp_path / "r", "done", exit_code=0)
    assert st["status"] == "done" and st["pid"] == 123 and st["ended"] and read_status(tmp_path / "r") == st
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "r").iterdir())


def _append(args):
    path, i = args
    append_experiment_log(f"## entry {i}\n" + "".join(f"line {i}.{j}\n" for j in range(200)) + "\n", path)


def _all_start_together(barrier):
    barrier.wait(timeout=300)


def test_experiment_log_entries_do_not_interleave(tmp_path):
    # spawn, not fork: fork from this multi-threaded process may deadlock (Python 3.12 warns) and
    # does not exist on Windows; the barrier makes the four workers append at the same time
    path = tmp_path / "log.md"
    ctx = mp.get_context("spawn")
    with ctx.Pool(4, initializer=_all_start_together, initargs=(ctx.Barrier(4),)) as pool:
        pool.map(_append, [(path, i) for i in range(8)])
    text = path.read_text()
    assert text.count("# Experiment log") == 1 and text.startswith("# Experiment log")
    blocks = [b for b in text.split("## entry ")[1:]]
    assert len(blocks) == 8
    for b in blocks:
        i = b.split("\n", 1)[0]
        assert all(line.startswith(f"line {i}.") for line in b.strip().split("\n")[1:])


def test_log_entry_has_commit_command_table(tmp_path):
    entry = format_log_entry(tmp_path, {"exp_name": "x", "command": "playground run gae-ppo"},
                             {"status": "done"}, [{"iteration": 1, "env_steps": 5, "wall_s": 1.0, "sr": 0.5,
                                                   "sr_at_end": 0.4}], [{"id": "KB10", "severity": "warning",
                                                                         "title": "t"}])
    assert "git commit:" in entry and "`playground run gae-ppo`" in entry and "| 1 | 5 | 1.0 | 0.500 | 0.400 |" in entry
    assert "KB10" in entry
