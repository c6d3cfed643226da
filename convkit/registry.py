"""Layer registry: name -> layer class, so that architectures are stored as names and configs (never code).

    @register_layer                       # registered as "MyLayer"
    class MyLayer(Layer): ...

    @register_layer(name="my_layer", aliases=("MyLayer2",))

Plugins: installed packages that declare an entry point in the group "convkit.layers"
(name = the layer's registry name, value = "module:Class") are imported on the first lookup.
"""
from __future__ import annotations

import importlib.metadata
import warnings
from typing import Callable, Optional, Union

ENTRY_POINT_GROUP = "convkit.layers"

_layers: dict[str, type] = {}
_plugins_loaded = False


def register_layer(cls: Optional[type] = None, *, name: Optional[str] = None,
                   aliases: tuple[str, ...] = ()) -> Union[type, Callable[[type], type]]:
    """Register a Layer subclass under `name` (default: the class name) and each alias.

    Usable bare (@register_layer) or with arguments (@register_layer(name=..., aliases=...)). Registering a
    name that is already taken raises ValueError. The class's `registry_name` becomes the primary name: it
    is what configs and saved files record.
    """
    def register(layer_class: type) -> type:
        primary = name or layer_class.__name__
        names = (primary, *aliases)
        for n in names:
            if not isinstance(n, str) or not n:
                raise TypeError(f"layer names must be non-empty strings, got {n!r}")
            if n in _layers:
                raise ValueError(f"layer name {n!r} is already registered (to {_layers[n].__module__}."
                                 f"{_layers[n].__qualname__})")
        for n in names:
            _layers[n] = layer_class
        layer_class.registry_name = primary
        return layer_class

    return register if cls is None else register(cls)


def _load_plugins() -> None:
    """Import every plugin of the entry-point group once; a plugin that fails to load only warns."""
    global _plugins_loaded
    _plugins_loaded = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = entry_point.load()
        except Exception as error:  # a broken plugin must not break every other model
            warnings.warn(f"convkit layer plugin {entry_point.name!r} ({entry_point.value}) failed to load: {error}",
                          RuntimeWarning, stacklevel=3)
            continue
        if isinstance(obj, type) and _layers.get(entry_point.name) is not obj:
            register_layer(obj, name=entry_point.name)


def get_layer_class(name: str) -> type:
    """The layer class registered as `name`; ValueError listing the known names if there is none."""
    if not _plugins_loaded:
        _load_plugins()
    try:
        return _layers[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layer {name!r}; known layers: {', '.join(sorted(_layers))}") from None


def registered_layers() -> list[str]:
    """Every registered name (aliases included), plugins loaded, sorted."""
    if not _plugins_loaded:
        _load_plugins()
    return sorted(_layers)
