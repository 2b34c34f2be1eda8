"""The explorer on a CNN: its JSON answers against the engine.

A CNN's page shows its first convolution's feature maps and kernels where an
MLP's shows hidden units, and each kernel's gradient where an MLP's shows
``dL/dW1``'s columns; the probabilities, steps and reset are the MLP's. Each
number is computed again here with the engine (``CNN.predict_proba``,
``loss_and_grads``, ``Adam``) or, for the maps, with a convolution written
out with a sliding window.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explorer extra is not installed")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")
pytest.importorskip("PIL", reason="the explorer prepares images with Pillow")

from explorer_client import explorer_client  # noqa: E402
from test_explorer_api import digit_png, post_image, x_of  # noqa: E402

from backprop.app.explorer.session import LR, Session  # noqa: E402
from backprop.app.networks import cnn_layers  # noqa: E402
from backprop.cnn import CNN  # noqa: E402
from backprop.errors import ConfigError  # noqa: E402
from backprop.losses import softmax  # noqa: E402
from backprop.optim import Adam  # noqa: E402

LAYERS = cnn_layers((16,), 10)  # LeNet-5's convolutions, small dense layers


@pytest.fixture
def model() -> CNN:
    cnn = CNN(LAYERS, seed=0)
    cnn.params["conv1.b"][...] = [0.05, -0.05, 0.0, 0.1, -0.1, 0.02]  # (6,)
    return cnn


@pytest.fixture
def client(model):
    session = Session(model, [str(d) for d in range(10)], source="cnn-run")
    return explorer_client(session)


def conv1_maps(model: CNN, x: np.ndarray) -> np.ndarray:
    """relu(x * K_f + b_f) for each kernel, "same" padding, by sliding window."""
    image = np.pad(x.reshape(28, 28), 2)  # (32, 32)
    patches = np.lib.stride_tricks.sliding_window_view(image, (5, 5))  # (28,28,5,5)
    w, b = model.params["conv1.w"][:, :, 0, :], model.params["conv1.b"]  # (5,5,6)
    z = np.einsum("hwij,ijf->fhw", patches, w) + b[:, None, None]  # (6, 28, 28)
    return np.maximum(z, 0).reshape(6, -1)  # (6, 784)


def test_the_model_says_it_is_a_cnn_and_how_its_view_is_laid_out(client):
    info = client.get("/api/model").json()
    assert info["model"] == "cnn" and info["sizes"] == [784, 16, 10]
    assert info["conv"] == {
        "layers": "conv5x5x6same-pool2-conv5x5x16valid-pool2-dense16-dense10",
        "filters": 6,
        "kernel": [5, 5],
        "map": [28, 28],
    }


def test_predict_gives_the_engines_probabilities_maps_and_kernels(client, model):
    answer = post_image(client, digit_png()).json()
    x = x_of(answer)  # (1, 784)
    probs = model.predict_proba(x)[0]  # (10,)
    assert answer["probabilities"] == probs.tolist()
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-6)
    assert answer["prediction"] == int(probs.argmax()) and "hidden" not in answer
    maps = np.asarray(answer["maps"])
    assert maps.shape == (6, 784) and maps.min() >= 0 and maps.max() > 0
    np.testing.assert_allclose(maps, conv1_maps(model, x), rtol=1e-5, atol=1e-6)
    assert (maps == 0).any(axis=1).all()  # the ReLU cut every map somewhere
    kernels, w = np.asarray(answer["kernels"]), model.params["conv1.w"]  # (5,5,1,6)
    assert kernels.shape == (6, 25)
    for f in range(6):
        assert kernels[f].tolist() == w[:, :, 0, f].ravel().tolist()
    again = client.post("/api/predict", json={"pixels": answer["prepared"]}).json()
    assert again["probabilities"] == answer["probabilities"]
    assert again["maps"] == answer["maps"]


def test_backward_gives_each_kernels_gradient(client, model):
    x = x_of(post_image(client, digit_png("one")).json())
    label = 4
    r = client.post("/api/backward", json={"pixels": x[0].tolist(), "label": label})
    assert r.status_code == 200, r.text
    answer = r.json()
    loss, grads, logits = model.loss_and_grads(x, np.array([label]), return_logits=True)
    assert answer["loss"] == float(loss) and "grad_hidden" not in answer
    dlogits = softmax(logits)[0] - np.eye(10)[label]  # p - onehot(y), N = 1
    np.testing.assert_allclose(answer["grad_logits"], dlogits, rtol=1e-6, atol=1e-7)
    assert [u["unit"] for u in answer["units"]] == list(range(6))
    for f, unit in enumerate(answer["units"]):
        assert unit["grad_weights"] == grads["conv1.w"][:, :, 0, f].ravel().tolist()
        assert unit["weights"] == model.params["conv1.w"][:, :, 0, f].ravel().tolist()
    assert any(any(u["grad_weights"]) for u in answer["units"])


def test_steps_are_adam_on_a_copy_and_reset_restores(client, model):
    x = x_of(post_image(client, digit_png()).json())
    loaded = {k: v.copy() for k, v in model.params.items()}
    twin = CNN.from_params(model.params, layers=LAYERS)
    opt, label = Adam(lr=LR), 2
    before = client.post("/api/predict", json={"pixels": x[0].tolist()}).json()
    for t in (1, 2):
        r = client.post("/api/step", json={"pixels": x[0].tolist(), "label": label})
        assert r.status_code == 200, r.text
        loss, grads = twin.loss_and_grads(x, np.array([label]))
        opt.step(twin.params, grads)
        answer = r.json()
        assert answer["steps"] == t and answer["loss_before"] == float(loss)
        assert answer["probabilities"] == twin.predict_proba(x)[0].tolist()
        kernels = twin.params["conv1.w"][:, :, 0, :].transpose(2, 0, 1)  # (6, 5, 5)
        assert answer["kernels"] == kernels.reshape(6, -1).tolist()
    assert answer["kernels"] != before["kernels"]  # the step moved the kernels
    for name, value in loaded.items():  # the loaded model is never changed
        np.testing.assert_array_equal(model.params[name], value)
    assert client.post("/api/reset", json={}).json() == {"steps": 0}
    again = client.post("/api/predict", json={"pixels": x[0].tolist()}).json()
    assert again["probabilities"] == before["probabilities"] and again["steps"] == 0
    assert again["maps"] == before["maps"] and again["kernels"] == before["kernels"]


def test_a_cnns_routes_keep_the_request_checks(client):
    pixels = [0.0] * 300 + [1.0] * 184 + [0.0] * 300
    step = {"pixels": pixels, "label": 3}
    r = client.post("/api/step", json=step, headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and "refused" in r.json()["error"]
    r = client.get("/api/model", headers={"host": "evil.example:8000"})
    assert r.status_code == 400 and "conv" not in r.text
    r = client.post(
        "/api/backward", content=str(step), headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    assert client.get("/api/model").json()["steps"] == 0


def test_a_cnn_the_page_cannot_draw_is_refused_in_one_line():
    names = [str(d) for d in range(10)]
    dense_only = CNN((("pool", 1), ("dense", 10)), seed=0)
    with pytest.raises(ConfigError, match="has no convolution"):
        Session(dense_only, names)
    wide = CNN((("conv", 3, 2), ("dense", 10)), input_shape=(14, 56, 1))
    with pytest.raises(ConfigError, match="draws 28x28 digits"):
        Session(wide, names)
