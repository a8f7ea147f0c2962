"""`simclip score --engine ray --ray-address` on two simulated nodes (`ray.cluster_utils.Cluster`):
the decode + OCR actors run on both nodes, and the rows are the local engine's."""

import logging
import re

import pytest

from score_support import TINY, assert_same_rows, make_corpus, require
from simclip_score import cli as score_cli
from simclip_score.output import read_rows

ray = require("ray")
cluster_utils = require("ray.cluster_utils")
require("ray.data")
require("pyarrow")

NODE = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}


@pytest.fixture(scope="module")
def cluster():
    """A head node and one worker node, one CPU each, on this machine."""
    if ray.is_initialized():
        ray.shutdown()
    c = cluster_utils.Cluster(initialize_head=True,
                              head_node_args={**NODE, "include_dashboard": False})
    c.add_node(**NODE)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def test_two_nodes_share_the_work_and_write_the_local_engines_rows(cluster, harmeme_val_dir,
                                                                    tmp_path, caplog):
    corpus = make_corpus(tmp_path / "corpus", harmeme_val_dir / "images", 6)
    local, distributed = tmp_path / "local.jsonl", tmp_path / "ray.parquet"
    common = [*TINY, "--no-progress", "--ocr", "none"]
    assert score_cli.main([str(corpus), "--out", str(local), *common]) == 1  # 2 broken files
    with caplog.at_level(logging.INFO, logger="simclip_score.ray_engine"):
        assert score_cli.main([str(corpus), "--out", str(distributed), *common, "--engine",
                               "ray", "--ray-address", cluster.address,
                               "--ray-cpu-batch", "1"]) == 1
    assert not ray.is_initialized()  # the run left the cluster it joined, and only that
    ray.init(address=cluster.address)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2  # both nodes still up
    stats = caplog.text.split("Ray Data stats", 1)[1]
    stats = stats.split("MapBatches(ReadStage)", 1)[1].split("\nOperator ", 1)[0]
    assert re.search(r"Tasks per node: .*; 2 nodes used", stats), stats  # readers on both nodes
    assert_same_rows(read_rows(distributed), read_rows(local), tol=1e-4)
