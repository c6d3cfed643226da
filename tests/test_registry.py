"""The layer registry: names, aliases, duplicates, unknown names, lazy plugin loading."""
import importlib.metadata

import pytest

import convkit.registry as registry
from convkit.layers import Conv2D, Dense, GlobalAveragePooling, Layer
from convkit.registry import get_layer_class, register_layer, registered_layers


def test_builtin_names_and_aliases():
    assert get_layer_class("Dense") is Dense and get_layer_class("Conv2D") is Conv2D
    assert get_layer_class("GlobalAveragePooling2D") is GlobalAveragePooling
    assert GlobalAveragePooling.registry_name == "GlobalAveragePooling"
    assert {"Dense", "Conv2D", "BatchNormalization", "SqueezeExcite", "InputLayer"} <= set(registered_layers())


def test_register_default_name_alias_and_duplicates():
    @register_layer(aliases=("test_registry_alias",))
    class TestRegistryLayer(Layer):
        pass

    assert get_layer_class("TestRegistryLayer") is TestRegistryLayer
    assert get_layer_class("test_registry_alias") is TestRegistryLayer
    with pytest.raises(ValueError, match="'TestRegistryLayer' is already registered"):
        register_layer(type("TestRegistryLayer", (Layer,), {}))
    with pytest.raises(ValueError, match="'Dense' is already registered"):
        register_layer(name="Dense")(type("Other", (Layer,), {}))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown layer 'Dnese'; known layers: .*Dense"):
        get_layer_class("Dnese")


def test_plugins_load_lazily_once(monkeypatch):
    loaded = []

    class PluginLayer(Layer):
        pass

    class FakeEntryPoint:
        name, value = "test_registry.Plugin", "fake:PluginLayer"

        def load(self):
            loaded.append(self.name)
            return PluginLayer

    class BrokenEntryPoint:
        name, value = "test_registry.Broken", "broken:Nothing"

        def load(self):
            raise ImportError("no module named broken")

    def entry_points(group):
        assert group == "convkit.layers"
        return [FakeEntryPoint(), BrokenEntryPoint()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "_layers", dict(registry._layers))
    assert loaded == []  # nothing happens before the first lookup
    with pytest.warns(RuntimeWarning, match="test_registry.Broken"):
        assert get_layer_class("test_registry.Plugin") is PluginLayer
    get_layer_class("Dense")
    assert loaded == ["test_registry.Plugin"]
    assert PluginLayer.registry_name == "test_registry.Plugin"
