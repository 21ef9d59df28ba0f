"""The CIFAR-10 loader on a tiny archive in the CIFAR-10 format that the test writes itself (no download)."""

import pickle
import tarfile

import pytest
import torch

from lnfl import realdata
from lnfl.realdata import (
    CIFAR10_MD5,
    ImagePair,
    cifar10_available,
    find_cifar10,
    load_cifar10_pair,
    split_validation,
    train_classifier,
    vgg_small,
)

PER_BATCH = 4  # images of each class in each training batch; the test batch holds 3 per class


def _batch(labels: list[int], offset: int) -> bytes:
    n = len(labels)
    g = torch.Generator().manual_seed(offset)
    data = torch.randint(0, 256, (n, 3072), generator=g, dtype=torch.uint8)
    # make each image recognisable: its first pixel encodes its class, the second a running index
    data[:, 0] = torch.tensor(labels, dtype=torch.uint8) * 20
    data[:, 1] = (torch.arange(n) + offset) % 256
    return pickle.dumps({b"data": data.numpy(), b"labels": labels, b"batch_label": b"fake"})


def _write_archive(path, classes=range(10), per_batch=PER_BATCH, per_test=3):
    members = {}
    for k in range(1, 6):
        labels = [c for c in classes for _ in range(per_batch)]
        members[f"data_batch_{k}"] = _batch(labels, 100 * k)
    members["test_batch"] = _batch([c for c in classes for _ in range(per_test)], 7)
    folder = path.parent / "src" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, raw in members.items():
        (folder / name).write_bytes(raw)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return _write_archive(tmp_path_factory.mktemp("cifar") / "cifar-10-python.tar.gz")


def test_find_and_availability(archive, tmp_path, monkeypatch):
    assert find_cifar10(archive) == archive
    assert find_cifar10(archive.parent) == archive  # a folder holding the archive
    assert find_cifar10(archive.parent / "src") is not None  # a folder holding cifar-10-batches-py
    assert not cifar10_available(tmp_path / "nothing-here")
    monkeypatch.setenv("LNFL_CIFAR10", str(archive))
    assert realdata.default_cifar10_path() == archive and cifar10_available()
    monkeypatch.setenv("LNFL_CIFAR10", str(tmp_path / "missing.tar.gz"))
    assert not cifar10_available()
    with pytest.raises(FileNotFoundError, match="download_cifar10"):
        load_cifar10_pair()


def test_no_download_when_loading(archive, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("load_cifar10_pair must never download")

    monkeypatch.setattr(realdata.urllib.request, "urlretrieve", forbidden)
    load_cifar10_pair(path=archive)


def test_subset_balance_labels_and_test_set(archive):
    pair = load_cifar10_pair(path=archive, tau_plus=0.25, seed=0)
    assert isinstance(pair, ImagePair) and pair.image_shape == (3, 32, 32)
    tr, te = pair.train, pair.test
    n_per_class = 5 * PER_BATCH
    assert tr.n == 2 * n_per_class
    assert int((tr.y > 0).sum()) == n_per_class and int((tr.y < 0).sum()) == n_per_class, "balanced subset"
    assert te.n == 6 and not bool(te.noisy.any()), "all test images of the two classes, clean labels"
    # airplane (0) is y = +1, automobile (1) is y = −1: the class is encoded in the first pixel (before scaling)
    raw = load_cifar10_pair(path=archive, tau_plus=0.0, seed=0, standardize=False)
    first = (raw.train.x[:, 0, 0, 0] * 255).round()
    assert torch.equal(first == 0, raw.train.y > 0) and torch.equal(first == 20, raw.train.y < 0)
    assert float(raw.train.x.min()) >= 0.0 and float(raw.train.x.max()) <= 1.0
    # standardised per channel on the training images
    m = tr.x.double().mean(dim=(0, 2, 3))
    s = tr.x.double().std(dim=(0, 2, 3))
    assert torch.allclose(m, torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(s, torch.ones(3, dtype=torch.float64), atol=1e-4)


def test_flips_exact_and_seeded(archive):
    a = load_cifar10_pair(path=archive, tau_plus=0.25, tau_minus=0.1, seed=3)
    b = load_cifar10_pair(path=archive, tau_plus=0.25, tau_minus=0.1, seed=3)
    c = load_cifar10_pair(path=archive, tau_plus=0.25, tau_minus=0.1, seed=4)
    n_c = 5 * PER_BATCH
    assert int((a.train.noisy & (a.train.y > 0)).sum()) == round(0.25 * n_c)
    assert int((a.train.noisy & (a.train.y < 0)).sum()) == round(0.1 * n_c)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y_obs, b.train.y_obs)
    assert not torch.equal(a.train.noisy, c.train.noisy) or not torch.equal(a.train.x, c.train.x)


def test_other_classes_and_n_per_class(archive):
    pair = load_cifar10_pair(classes=(3, 5), path=archive, n_per_class=7, seed=0, standardize=False)
    assert pair.train.n == 14 and int((pair.train.y > 0).sum()) == 7
    first = (pair.train.x[:, 0, 0, 0] * 255).round()
    assert set(first.tolist()) == {60.0, 100.0} and pair.name == "CIFAR-10 cat vs dog"
    with pytest.raises(ValueError, match="n_per_class"):
        load_cifar10_pair(path=archive, n_per_class=21)


def test_extracted_folder_reads_the_same(archive):
    a = load_cifar10_pair(path=archive, seed=1)
    b = load_cifar10_pair(path=archive.parent / "src", seed=1)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y_obs, b.train.y_obs)


def test_incomplete_archive_is_rejected(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    (tmp_path / "test_batch").write_bytes(_batch([0, 1], 0))
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "test_batch", arcname="cifar-10-batches-py/test_batch")
    with pytest.raises(ValueError, match="data_batch_1"):
        load_cifar10_pair(path=bad)


def test_bad_arguments(archive):
    with pytest.raises(ValueError, match="classes"):
        load_cifar10_pair(classes=(0, 10), path=archive)
    with pytest.raises(ValueError, match="tau_plus"):
        load_cifar10_pair(tau_plus=0.5, path=archive)
    with pytest.raises(ValueError, match="divisible"):
        vgg_small((3, 12, 12), widths=(4, 8, 16))


def test_download_checks_md5(tmp_path, monkeypatch):
    """download_cifar10 with a fake fetch: a wrong checksum leaves no file behind."""

    def fake_fetch(url, filename):
        with open(filename, "wb") as f:
            f.write(b"not cifar")

    monkeypatch.setattr(realdata.urllib.request, "urlretrieve", fake_fetch)
    with pytest.raises(OSError, match="checksum"):
        realdata.download_cifar10(tmp_path / "c.tar.gz")
    assert list(tmp_path.iterdir()) == []
    assert realdata._md5 is not None and len(CIFAR10_MD5) == 32
    got = realdata.download_cifar10(tmp_path / "c.tar.gz", md5=None)
    assert got.read_bytes() == b"not cifar"


def test_vgg_trains_a_few_sgd_steps(archive):
    pair = load_cifar10_pair(path=archive, tau_plus=0.2, seed=0)
    pair, val = split_validation(pair, 0.25, seed=0)
    assert pair.train.n + val.n == 40 and val.n == 10
    net = vgg_small(widths=(4, 8, 8), seed=0)
    assert net(pair.train.x[:3]).shape == (3,)
    hist = train_classifier(net, pair, lr=0.01, epochs=3, batch_size=8, val=val, eval_batch=7)
    assert hist.epoch.tolist() == [0, 1, 2, 3]
    assert hist.margin.shape == (4, 30) and hist.val_acc.shape == (4,)
    assert bool(torch.isfinite(hist.loss).all()) and bool(torch.isfinite(hist.val_acc).all())
    assert float(hist.loss[-1]) < float(hist.loss[0]), "a few SGD steps lower the training loss"
    # the network passed in is untouched, and the same call repeats exactly
    again = train_classifier(net, pair, lr=0.01, epochs=3, batch_size=8, val=val)
    assert torch.allclose(again.margin, hist.margin, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_vgg_on_gpu_matches_history_layout(archive):
    pair = load_cifar10_pair(path=archive, seed=0)
    hist = train_classifier(vgg_small(widths=(4, 8, 8)), pair, lr=0.01, epochs=2, batch_size=8, device="cuda")
    assert hist.margin.device.type == "cpu" and hist.epoch.tolist() == [0, 1, 2]


def test_val_acc_is_nan_without_validation_set(archive):
    pair = load_cifar10_pair(path=archive, seed=0)
    hist = train_classifier(vgg_small(widths=(4, 4, 4)), pair, lr=0.01, epochs=1, batch_size=16)
    assert hist.val_acc.shape == (2,) and bool(torch.isnan(hist.val_acc).all())
    with pytest.raises(TypeError, match="val"):
        train_classifier(vgg_small(widths=(4, 4, 4)), pair, epochs=1, val=pair)
