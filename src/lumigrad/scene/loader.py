"""Scene loading: Mitsuba 3 XML files and strings, and Mitsuba's Python dict form.

>>> scene = load_file("cbox.xml", spp=16, res=128)        # doctest: +SKIP
>>> scene = load_dict({"type": "scene", "ball": {"type": "sphere"}})  # doctest: +SKIP

Both forms become :class:`~lumigrad.scene.xml.ObjectDesc` trees (see
:mod:`lumigrad.scene.xml` for the XML side) and go through one schema-driven
instantiation: every plugin class declares ``PARAMS`` (see
:mod:`lumigrad.scene.schema`); each given value is checked against it — the
parameter name (aliases and the 0.6 dialect's camelCase spellings accepted,
close matches suggested), the value's kind, finiteness and range, required
parameters — converted to the documented Python value and passed to
``cls(**values, id=...)``. Colours and floats given to ``texture`` parameters
are wrapped in the ``constant`` texture plugin, so their keys are
``<id>.<param>.value`` as in Mitsuba.

Every error is a :class:`SceneLoadError` whose message starts with the
location (``file:line`` or the dict path such as
``scene['green-wall']['bsdf']``) and names the plugin and the parameter.

Objects with an ``id`` are created once and shared by every ``<ref>`` to them
(references may point forwards). Shapes keep their order and ids; a shape
without a BSDF gets a default ``diffuse`` one (as in Mitsuba); an area emitter
nested in a shape is attached as ``shape.emitter`` with ``emitter.shape`` set.
"""
from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import re
from typing import Any, Optional, Union

import numpy as np

from .schema import REGISTRY, Param
from .xml import (CATEGORIES, MEDIUM_TYPES, MITSUBA_PLUGINS, UNSUPPORTED, ObjectDesc,
                  PropDesc, RefDesc, SceneLoadError, parse_xml, unsupported_message)

__all__ = ["load_file", "load_string", "load_dict", "instantiate_file", "instantiate_string",
           "instantiate_dict", "SceneLoadError", "ensure_plugins"]

PathLike = Union[str, "os.PathLike[str]"]

#: order in which an ambiguous type name at the top level of a dict is resolved
_TOP_PRIORITY = ("shape", "emitter", "sensor", "integrator", "bsdf", "texture", "film",
                 "sampler", "rfilter")
#: dict-form ``type`` values that denote a value rather than a plugin
_VALUE_TYPES = ("rgb", "srgb", "spectrum", "ref")

#: Mitsuba plugin names that lumigrad renders with another plugin: the volumetric path
#: tracers are the path tracer when the scene has no media (media are refused).
_TYPE_ALIASES = {("integrator", "volpathmis"): "volpath",
                 ("integrator", "prbvolpath"): "volpath",
                 ("integrator", "volpath_simple"): "volpath"}  # (Mitsuba 0.6)

_PLUGIN_IMPORT_ERRORS: dict[str, str] = {}
_PLUGINS_LOADED = False


def ensure_plugins() -> None:
    """Import the plugin modules so that they register themselves.

    Imports :mod:`lumigrad.plugins` when it exists; otherwise every module of
    the plugin packages. Import failures are remembered and reported with
    "unknown plugin" errors instead of being raised here.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    importlib.import_module("lumigrad.geometry.shapes")  # ours: always registered
    try:
        importlib.import_module("lumigrad.plugins")
        return
    except ModuleNotFoundError as e:
        if e.name != "lumigrad.plugins":
            _PLUGIN_IMPORT_ERRORS["lumigrad.plugins"] = repr(e)
    except Exception as e:  # noqa: BLE001 - reported later, with context
        _PLUGIN_IMPORT_ERRORS["lumigrad.plugins"] = repr(e)
    for pkg in ("bsdfs", "textures", "emitters", "sensors", "integrators"):
        name = f"lumigrad.{pkg}"
        try:
            mod = importlib.import_module(name)
        except Exception as e:  # noqa: BLE001
            _PLUGIN_IMPORT_ERRORS[name] = repr(e)
            continue
        for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
            full = f"{name}.{info.name}"
            try:
                importlib.import_module(full)
            except Exception as e:  # noqa: BLE001
                _PLUGIN_IMPORT_ERRORS[full] = repr(e)


# --------------------------------------------------------------------------- helpers
def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _close(word: str, options: list[str]) -> str:
    m = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(x) for x in m)}?)" if m else ""


def _plugin_types(category: str) -> list[str]:
    return sorted(t for (c, t) in REGISTRY if c == category)


def _owner(desc: ObjectDesc, category: Optional[str] = None) -> str:
    cat = category or desc.category or "object"
    return f"{cat} '{desc.id}' (type '{desc.type}')" if desc.id else f"{cat} of type '{desc.type}'"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


# --------------------------------------------------------------------------- builder
class _Builder:
    """Instantiates :class:`ObjectDesc` trees against the plugin registry."""

    def __init__(self, file: str, base_dir: Optional[str],
                 search_paths: Optional[list] = None) -> None:
        ensure_plugins()
        self.file = file
        self.base_dir = base_dir
        #: folders of the scene's ``<path>`` elements, searched before ``base_dir``
        self.search_paths = list(search_paths or [])
        self.decls: dict[str, ObjectDesc] = {}
        self.built: dict[str, Any] = {}
        self.category_of: dict[int, str] = {}  # id(obj) -> category
        self.in_progress: list[str] = []
        self.ids: dict[str, Any] = {}

    # -- ids -----------------------------------------------------------------
    def collect(self, descs: list) -> None:
        for d in descs:
            if isinstance(d, ObjectDesc):
                if d.id is not None:
                    if d.id in self.decls:
                        raise SceneLoadError(f"{d.where}: duplicate id '{d.id}' (first declared "
                                             f"at {self.decls[d.id].where})")
                    self.decls[d.id] = d
                self.collect(d.children)

    def resolve_ref(self, ref: RefDesc) -> tuple[Any, str]:
        if ref.id not in self.decls:
            raise SceneLoadError(f"{ref.where}: <ref id=\"{ref.id}\"> refers to an unknown id"
                                 f"{_close(ref.id, list(self.decls))}; known ids: "
                                 f"{', '.join(sorted(self.decls)) or 'none'}")
        obj = self.build(self.decls[ref.id])
        return obj, self.category_of[id(obj)]

    # -- categories ------------------------------------------------------------
    def infer_category(self, desc: ObjectDesc, allowed: tuple) -> str:
        """Category of a dict-form object from its type name, among ``allowed``."""
        desc.type = next((_TYPE_ALIASES[(c, desc.type)] for c in allowed
                          if (c, desc.type) in _TYPE_ALIASES), desc.type)
        cands = [c for c in allowed if (c, desc.type) in REGISTRY]
        if cands:
            return cands[0]
        if desc.type in MEDIUM_TYPES:
            raise SceneLoadError(unsupported_message(desc.where, "medium", desc.type))
        known_unsupported = [c for c in allowed if (c, desc.type) in UNSUPPORTED
                             or desc.type in MITSUBA_PLUGINS.get(c, ())]
        if known_unsupported:
            raise SceneLoadError(unsupported_message(desc.where, known_unsupported[0], desc.type))
        every = sorted({c for (c, t) in REGISTRY if t == desc.type})
        if every:
            raise SceneLoadError(f"{desc.where}: a '{desc.type}' plugin is a {' or '.join(every)}, "
                                 f"which is not accepted here (expected {' or '.join(allowed)})")
        known = sorted({t for (c, t) in REGISTRY if c in allowed})
        raise SceneLoadError(f"{desc.where}: unknown plugin type '{desc.type}'"
                             f"{_close(desc.type, known)}; known {'/'.join(allowed)} types: "
                             f"{', '.join(known)}{self._import_note()}")

    @staticmethod
    def _import_note() -> str:
        if not _PLUGIN_IMPORT_ERRORS:
            return ""
        return " (some plugin modules failed to import: " + "; ".join(
            f"{k}: {v}" for k, v in _PLUGIN_IMPORT_ERRORS.items()) + ")"

    # -- instantiation ----------------------------------------------------------
    def build(self, desc: ObjectDesc, allowed: tuple = CATEGORIES) -> Any:
        if desc.id is not None and desc.id in self.built:
            return self.built[desc.id]
        if desc.id is not None:
            if desc.id in self.in_progress:
                chain = " -> ".join(self.in_progress + [desc.id])
                raise SceneLoadError(f"{desc.where}: circular reference: {chain}")
            self.in_progress.append(desc.id)
        try:
            obj = self._build(desc, allowed)
        finally:
            if desc.id is not None:
                self.in_progress.remove(desc.id)
        if desc.id is not None:
            self.built[desc.id] = obj
            self.ids[desc.id] = obj
        return obj

    def _build(self, desc: ObjectDesc, allowed: tuple) -> Any:
        category = desc.category
        if category is None:
            category = self.infer_category(desc, allowed)
            desc.category = category
        elif category not in allowed:
            raise SceneLoadError(f"{desc.where}: a <{category}> is not accepted here "
                                 f"(expected {' or '.join(f'<{a}>' for a in allowed)})")
        desc.type = _TYPE_ALIASES.get((category, desc.type), desc.type)
        cls = REGISTRY.get((category, desc.type))
        owner = _owner(desc, category)
        if cls is None and ((category, desc.type) in UNSUPPORTED or desc.type in MEDIUM_TYPES
                            or desc.type in MITSUBA_PLUGINS.get(category, ())):
            raise SceneLoadError(unsupported_message(desc.where, category, desc.type))
        if cls is None:
            known = _plugin_types(category)
            raise SceneLoadError(f"{desc.where}: unknown {category} plugin type '{desc.type}'"
                                 f"{_close(desc.type, known)}; known {category} types: "
                                 f"{', '.join(known) or 'none registered'}{self._import_note()}")
        params: dict[str, Param] = getattr(cls, "PARAMS", {})
        values: dict[str, Any] = {}
        given: dict[str, str] = {}

        def claim(pname: str, where: str) -> None:
            if pname in given and params[pname].kind != "objects":
                raise SceneLoadError(f"{where}: {owner}: parameter '{pname}' is given twice "
                                     f"(first at {given[pname]})")
            given[pname] = where

        for prop in desc.props:
            pname = self.match_name(prop.name, params, owner, prop.where)
            claim(pname, prop.where)
            values[pname] = self.convert(prop, params[pname], pname, owner)

        object_params = [(n, p) for n, p in params.items() if p.kind in ("object", "objects")]
        # A plugin whose nested objects may carry any name (e.g. the moment
        # integrator's nested integrators): the names go to '<param>_names'.
        named_any = getattr(cls, "NAMED_CHILDREN", None)
        child_names: list = []
        for child in desc.children:
            where = child.where
            cname = child.name
            if isinstance(child, RefDesc):
                obj, ccat = self.resolve_ref(child)
            else:
                obj, ccat = None, child.category
            if cname is not None and named_any and cname not in params and \
                    _camel_to_snake(cname) not in params:
                pname = named_any
                p = params[pname]
                want = (p.category,)
                child_names.append(cname)
            elif cname is not None:
                pname = self.match_name(cname, params, owner, where)
                p = params[pname]
                if p.kind == "texture":
                    want = ("texture",)
                elif p.kind in ("object", "objects"):
                    want = (p.category,) if p.category else CATEGORIES
                else:
                    raise SceneLoadError(f"{where}: {owner}: parameter '{pname}' expects a "
                                         f"{p.kind} value, not a nested object")
            else:
                # Unnamed: bind to the (first unfilled) object parameter of this category.
                cats = (ccat,) if ccat else tuple(
                    c for c in _TOP_PRIORITY if (c, getattr(child, "type", None)) in REGISTRY)
                pname = None
                for c in cats:
                    matches = [n for n, p in object_params if p.category == c]
                    free = [n for n in matches if n not in given or params[n].kind == "objects"]
                    if free:
                        pname = free[0]
                        break
                    if matches:
                        raise SceneLoadError(f"{where}: {owner}: more than one nested {c} "
                                             f"(parameter '{matches[0]}' is already given at "
                                             f"{given[matches[0]]})")
                tex_params = [n for n, p in params.items() if p.kind == "texture"]
                if pname is None and ccat == "texture" and tex_params:
                    raise SceneLoadError(f"{where}: {owner}: a nested <texture> needs a name "
                                         f"attribute saying which parameter it sets (one of: "
                                         f"{', '.join(tex_params)})")
                if pname is None:
                    what = f"<{ccat}>" if ccat else f"object of type '{child.type}'"
                    acc = ", ".join(f"{n} ({p.category})" for n, p in object_params)
                    raise SceneLoadError(f"{where}: {owner} does not accept a nested {what}; "
                                         f"nested objects it accepts: {acc or 'none'}")
                p = params[pname]
                want = (p.category,)
                if pname == named_any:
                    child_names.append(None)
            if obj is None:
                obj = self.build(child, want)
                ccat = self.category_of[id(obj)]
            elif ccat not in want:
                raise SceneLoadError(f"{where}: {owner}: parameter '{pname}' expects a "
                                     f"{' or '.join(want)}, but '{child.id}' is a {ccat}")
            claim(pname, where)
            if p.kind == "objects":
                values.setdefault(pname, []).append(obj)
            else:
                values[pname] = obj

        # Required parameters, then defaults for what was not given.
        for n, p in params.items():
            if n in values:
                continue
            if p.required:
                raise SceneLoadError(f"{desc.where}: {owner}: missing required parameter '{n}'"
                                     + (f" ({p.doc})" if p.doc else ""))
            if p.kind == "texture" and p.default is not None and not hasattr(p.default, "eval") \
                    and not p.ignored:
                values[n] = self.constant_texture(p.default, f"{desc.where}: {owner}, "
                                                              f"parameter '{n}'")

        if category == "shape" and "emitter" in values:
            em = values["emitter"]
            if not getattr(em, "is_area", False):
                raise SceneLoadError(f"{desc.where}: {owner}: only area emitters can be attached "
                                     f"to a shape, got {type(em).__name__}")
            if getattr(em, "shape", None) is not None:
                raise SceneLoadError(f"{desc.where}: {owner}: the area emitter "
                                     f"'{getattr(em, 'id', None)}' is already attached to "
                                     f"shape '{getattr(em.shape, 'id', None)}'")
        # Parameters accepted for compatibility only (see Param.ignored).
        values = {n: v for n, v in values.items() if not params[n].ignored}
        if named_any and child_names:
            values[f"{named_any}_names"] = child_names
        try:
            obj = cls(**values, id=desc.id)
        except SceneLoadError:
            raise
        except (ValueError, TypeError, KeyError, OSError, IndexError) as e:
            msg = str(e) if not isinstance(e, KeyError) else repr(e)
            raise SceneLoadError(f"{desc.where}: cannot create {owner}: {msg}") from e
        self.category_of[id(obj)] = category

        if category == "shape":
            self.finish_shape(obj, values, desc, owner)
        return obj

    def finish_shape(self, shape: Any, values: dict, desc: ObjectDesc, owner: str) -> None:
        em = values.get("emitter")
        if em is not None:
            if getattr(shape, "emitter", None) is not em:
                shape.emitter = em
            em.shape = shape
        if getattr(shape, "bsdf", None) is None and ("bsdf", "diffuse") in REGISTRY:
            # Mitsuba's default material: grey diffuse, black on emitters (light falling
            # on a lamp without a BSDF is not reflected; Mitsuba 3.9.1's traverse shows 0)
            where = f"{desc.where} (default bsdf)"
            props = [PropDesc("reflectance", "float", 0.0, where)] if em is not None else []
            default = ObjectDesc("bsdf", "diffuse", None, None, where, props)
            shape.bsdf = self._build(default, ("bsdf",))

    # -- names and values ------------------------------------------------------
    def match_name(self, name: str, params: dict, owner: str, where: str) -> str:
        if name in params:
            return name
        for n, p in params.items():
            if name in getattr(p, "aliases", ()):
                return n
        snake = _camel_to_snake(name)
        if snake in params:
            return snake
        for n, p in params.items():
            if snake in getattr(p, "aliases", ()):
                return n
        accepted = sorted(params)
        raise SceneLoadError(f"{where}: {owner} has no parameter '{name}'{_close(name, accepted)}; "
                             f"accepted: {', '.join(accepted) or 'none'}")

    def constant_texture(self, value: Any, where: str) -> Any:
        cls = REGISTRY.get(("texture", "constant"))
        if cls is None:
            raise SceneLoadError(f"{where}: a constant value was given for a texture, but no "
                                 f"'constant' texture plugin is registered{self._import_note()}")
        try:
            obj = cls(value=value)
        except (ValueError, TypeError) as e:
            raise SceneLoadError(f"{where}: {e}") from e
        self.category_of[id(obj)] = "texture"
        return obj

    def convert(self, prop: PropDesc, p: Param, pname: str, owner: str) -> Any:
        """Check a property against its Param and return the constructor value."""
        tag, v = prop.tag, prop.value
        loc = f"{prop.where}: {owner}, parameter '{pname}'"
        kind = p.kind

        def bad(expected: str) -> SceneLoadError:
            shown = "a transform" if tag == "transform" else f"<{tag}> {v!r}"
            return SceneLoadError(f"{loc}: expected {expected}, got {shown}")

        def triple(val: Any) -> tuple:
            if _is_number(val):
                return (float(val),) * 3
            return tuple(float(x) for x in val)

        if kind == "image":
            if tag != "image":
                raise bad("an image array (height x width x channels)")
            return v
        if kind == "float_or_string":
            # e.g. an index of refraction: a number, or a name the plugin resolves
            if tag == "string":
                return str(v)
            kind = "float"
        if kind == "float":
            if tag not in ("float", "integer"):
                raise bad("a <float>")
            out: Any = float(v)
        elif kind == "int":
            if tag != "integer":
                raise bad("an <integer>")
            out = int(v)
        elif kind == "bool":
            if tag != "boolean":
                raise bad("a <boolean> (true or false)")
            out = bool(v)
        elif kind == "string":
            if tag != "string":
                raise bad("a <string>")
            out = str(v)
            if p.choices is not None and out not in p.choices:
                raise SceneLoadError(f"{loc}: {out!r} is not one of {', '.join(p.choices)}"
                                     f"{_close(out, list(p.choices))}")
            if pname == "filename":
                out = self.resolve_filename(out)
        elif kind == "color":
            if tag not in ("rgb", "srgb", "spectrum", "float", "integer", "triple"):
                raise bad("a colour (<rgb>, <spectrum> or <float>)")
            out = triple(v)
        elif kind == "texture":
            if tag == "spectrum" and p.emission and _is_number(v):
                # a flat emission spectrum is not grey in RGB (see flat_emission_rgb)
                from ..emitters._util import flat_emission_rgb

                self.check_range(p, float(v), loc)
                tag, v = "rgb", flat_emission_rgb(float(v))
            if tag in ("rgb", "srgb", "spectrum", "float", "integer", "triple"):
                raw = float(v) if _is_number(v) else triple(v)
                self.check_range(p, raw, loc)
                return self.constant_texture(raw, loc)
            if tag == "instance":
                return v
            raise bad("a texture, a colour or a float")
        elif kind in ("point", "vector"):
            if tag not in ("point", "vector", "triple"):
                raise bad(f"a <{kind}> (3 numbers)")
            out = triple(v)
            if len(out) != 3:
                raise SceneLoadError(f"{loc}: expected 3 numbers, got {len(out)}")
        elif kind == "transform":
            if tag != "transform":
                raise bad("a <transform>")
            out = v
            try:
                p.check_transform(v.numpy() if hasattr(v, "numpy") else v, loc)
            except ValueError as e:
                raise SceneLoadError(str(e)) from None
        elif kind in ("object", "objects"):
            if tag == "instance":
                return [v] if kind == "objects" else v
            raise bad(f"a nested <{p.category or 'object'}> or <ref>")
        else:
            raise SceneLoadError(f"{loc}: the plugin declares an unknown parameter kind {kind!r}")
        if kind in ("float", "int", "color", "point", "vector"):
            self.check_range(p, out, loc)
        return out

    @staticmethod
    def check_range(p: Param, value: Any, loc: str) -> None:
        try:
            p.check_range(value, loc)
        except ValueError as e:
            raise SceneLoadError(str(e)) from None

    def resolve_filename(self, fn: str) -> str:
        """Relative file names are looked up in the folders of ``<path>``
        elements (the last declared first), next to the scene file, then in the
        working directory (as Mitsuba's file resolver does)."""
        if os.path.isabs(fn):
            return fn
        for folder in self.search_paths:
            cand = os.path.join(folder, fn)
            if os.path.exists(cand):
                return cand
        if self.base_dir is None:
            return fn
        cand = os.path.join(self.base_dir, fn)
        if os.path.exists(cand) or not os.path.exists(fn):
            return cand
        return fn


# --------------------------------------------------------------------------- assembly
def _instantiate(descs: list, file: str, base_dir: Optional[str],
                 search_paths: Optional[list] = None) -> dict:
    b = _Builder(file, base_dir, search_paths)
    b.collect(descs)
    return _assemble(b, descs, CATEGORIES, xml=True)


def _assemble(b: Any, descs: list, allowed: Any, xml: bool) -> dict:
    """Build the top-level objects ``descs`` with builder ``b`` and sort them into
    shapes, emitters, sensors and the integrator (errors in the XML or dict
    dialect's terms)."""
    shapes, emitters, sensors, integrators = [], [], [], []
    instances: list = []
    for d in descs:
        obj = b.build(d, allowed)
        cat = b.category_of[id(obj)]
        if cat == "shape":
            if getattr(obj, "is_shapegroup", False):
                continue  # rendered only through instances
            if hasattr(obj, "instance_meshes"):
                # Instances are flattened into copies of the group's meshes
                # (geometry/instance.py); their ids join the scene's ids.
                for m in obj.instance_meshes(len(instances)):
                    shapes.append(m)
                    b.ids[m.id] = m
                instances.append(obj)
                continue
            shapes.append(obj)
        elif cat == "emitter":
            if getattr(obj, "is_area", False):
                raise SceneLoadError(
                    f"{d.where}: {_owner(d)}: an area emitter must be nested inside a <shape>"
                    if xml else f"{d.where}: an area emitter must be nested inside a shape "
                    "(as its 'emitter' entry)")
            emitters.append(obj)
        elif cat == "sensor":
            sensors.append(obj)
        elif cat == "integrator":
            if integrators:
                raise SceneLoadError(
                    f"{d.where}: a scene has at most one <integrator> (another one is "
                    "declared before)" if xml else f"{d.where}: a scene has at most one "
                    "integrator")
            integrators.append(obj)
        elif xml and cat in ("film", "sampler", "rfilter") and d.id is None:
            raise SceneLoadError(f"{d.where}: a top-level <{cat}> must have an id to be "
                                 f"referenced (or be nested inside a <sensor>/<film>)")
    return {"shapes": shapes, "emitters": emitters, "sensors": sensors,
            "integrator": integrators[0] if integrators else None, "ids": dict(b.ids)}


def instantiate_file(path: PathLike, **overrides: Any) -> dict:
    """Parse and instantiate a scene file without building a ``Scene``.

    Returns ``{'shapes': [...], 'emitters': [...], 'sensors': [...],
    'integrator': obj or None, 'ids': {id: obj}}``.
    """
    path = os.fspath(path)
    descs, info = parse_xml(None, overrides, filename=path)
    return _instantiate(descs, path, os.path.dirname(os.path.abspath(path)), info["paths"])


def instantiate_string(xml_text: str, **overrides: Any) -> dict:
    """As :func:`instantiate_file` for XML text (relative file names resolve
    against the working directory)."""
    descs, info = parse_xml(xml_text, overrides)
    return _instantiate(descs, "<string>", None, info["paths"])


def _scene_from(parts: dict, where: str, accel: Optional[str] = None) -> Any:
    from .scene import Scene

    try:
        scene = Scene(shapes=parts["shapes"], emitters=parts["emitters"],
                      sensors=parts["sensors"], integrator=parts["integrator"], ids=parts["ids"],
                      accel=accel)
        check = getattr(parts["integrator"], "check_scene", None)
        if check is not None:      # combinations an integrator does not support yet
            check(scene)
        return scene
    except SceneLoadError:
        raise
    except (ValueError, TypeError) as e:
        raise SceneLoadError(f"{where}: {e}") from e


def load_file(path: PathLike, *, accel: Optional[str] = None, **overrides: Any) -> Any:
    """Load a Mitsuba-format XML scene file into a :class:`~lumigrad.scene.scene.Scene`.

    Keyword arguments override ``<default>`` values (``load_file('cbox.xml',
    spp=16, res=128)``); an override that the scene never uses gives a warning.
    ``accel`` picks the ray-tracing core (``'auto'``, ``'builtin'``, ``'mitsuba'``;
    default: ``LUMIGRAD_ACCEL``, see :mod:`lumigrad.geometry.accel`).
    """
    return _scene_from(instantiate_file(path, **overrides), os.fspath(path), accel)


def load_string(xml_text: str, *, accel: Optional[str] = None, **overrides: Any) -> Any:
    """Load a scene from XML text (see :func:`load_file`)."""
    return _scene_from(instantiate_string(xml_text, **overrides), "<string>", accel)


# --------------------------------------------------------------------------- dict form
def _dict_path(path: str, key: Any) -> str:
    return f"{path}[{key!r}]"


def _dict_value(key: str, value: Any, where: str,
                in_emitter: bool = False) -> Union[PropDesc, ObjectDesc, RefDesc]:
    """One entry of a plugin dict -> a property, nested object or reference
    (``in_emitter``: inside an emitter, where spectra are illuminants)."""
    from ..geometry.transform import Transform4f
    import drjit as dr

    if isinstance(value, dict):
        t = value.get("type")
        if not isinstance(t, str):
            raise SceneLoadError(f"{where}: a nested dict needs a 'type' entry (a plugin type, "
                                 "'rgb', 'spectrum' or 'ref')")
        if t == "ref":
            extra = set(value) - {"type", "id"}
            if "id" not in value or extra:
                raise SceneLoadError(f"{where}: a reference is {{'type': 'ref', 'id': '...'}}"
                                     + (f"; unexpected keys {sorted(extra)}" if extra else ""))
            return RefDesc(id=str(value["id"]), name=key, where=where)
        if t == "blackbody" or (t == "spectrum" and (
                "filename" in value or _is_pair_list(value.get("value")))):
            return PropDesc(key, "spectrum", _dict_spectrum(value, where, in_emitter, key), where)
        if t in ("d65", "uniform") or (t == "srgb" and "color" in value):
            # Mitsuba 3's spectrum plugins in its RGB variants (checked with 3.9.1):
            # d65 = color (default white) x scale; srgb = its *linear* color;
            # uniform = the grey value.
            allowed = {"d65": {"type", "color", "scale"}, "srgb": {"type", "color"},
                       "uniform": {"type", "value"}}[t]
            extra = set(value) - allowed
            if extra:
                raise SceneLoadError(f"{where}: unexpected keys {sorted(extra)} in a {t} value; "
                                     f"accepted: {sorted(allowed - {'type'})}")
            if t == "uniform":
                v = _color_value("spectrum", value.get("value", 1.0), where)
                rgb = (v,) * 3 if _is_number(v) else v
            else:
                rgb = _color_value("rgb", value.get("color", 1.0), where)
                scale = value.get("scale", 1.0)
                if not _is_number(scale) or not np.isfinite(scale):
                    raise SceneLoadError(f"{where}: 'scale' of a d65 value must be a number")
                rgb = tuple(float(c) * float(scale) for c in rgb)
            return PropDesc(key, "rgb", rgb, where)
        if t in ("rgb", "srgb", "spectrum"):
            extra = set(value) - {"type", "value", "color"}
            if extra:
                raise SceneLoadError(f"{where}: unexpected keys {sorted(extra)} in a {t} value")
            raw = value.get("value", value.get("color"))
            if raw is None:
                raise SceneLoadError(f"{where}: a {t} value needs a 'value' entry")
            return PropDesc(key, t, _color_value(t, raw, where), where)
        return _dict_object(value, where, name=key, in_emitter=in_emitter)
    if isinstance(value, bool):
        return PropDesc(key, "boolean", value, where)
    if isinstance(value, (int, np.integer)):
        return PropDesc(key, "integer", int(value), where)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise SceneLoadError(f"{where}: value {value!r} is not finite (NaN or inf)")
        return PropDesc(key, "float", float(value), where)
    if isinstance(value, str):
        return PropDesc(key, "string", value, where)
    if isinstance(value, Transform4f):
        return PropDesc(key, "transform", value, where)
    if isinstance(value, dr.ArrayBase) or isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise SceneLoadError(f"{where}: cannot interpret {type(value).__name__} as "
                                 "numbers") from None
        if not np.all(np.isfinite(arr)):
            raise SceneLoadError(f"{where}: value contains NaN or inf")
        if arr.ndim == 3 or (arr.ndim == 2 and arr.shape not in ((4, 4), (3, 3))
                             and min(arr.shape) > 1):
            # An in-memory image (H x W [x C]) for a bitmap's `data` or an envmap's `bitmap`.
            img = arr.astype(np.float32)
            return PropDesc(key, "image", img if img.ndim == 3 else img[..., None], where)
        if arr.shape in ((4, 4), (3, 3)):
            return PropDesc(key, "transform", Transform4f(arr), where)
        if arr.size == 1:
            return PropDesc(key, "float", float(arr.reshape(-1)[0]), where)
        if arr.size == 3:
            return PropDesc(key, "triple", tuple(float(x) for x in arr.reshape(-1)), where)
        if arr.size == 16:
            return PropDesc(key, "transform", Transform4f(arr.reshape(4, 4)), where)
        raise SceneLoadError(f"{where}: expected 1 or 3 numbers or a 4x4 matrix, got an array "
                             f"of shape {arr.shape}")
    if hasattr(value, "PLUGIN") or hasattr(value, "eval"):
        # An already-created plugin object (e.g. a BSDF built in Python).
        return PropDesc(key, "instance", value, where)
    raise SceneLoadError(f"{where}: unsupported value of type {type(value).__name__}")


def _is_pair_list(raw: Any) -> bool:
    """``[(400, 0.3), (500, 0.6)]`` or ``"400:0.3, 500:0.6"``: a wavelength list."""
    if isinstance(raw, str):
        return ":" in raw
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return arr.ndim == 2 and arr.shape[1] == 2


def _dict_spectrum(value: dict, where: str, in_emitter: bool, key: str = "") -> tuple:
    """Dict-form spectra: ``{'type': 'spectrum', 'value': [(λ, v), ...]}`` (or the
    XML's ``"λ:v, ..."`` string), ``{'type': 'spectrum', 'filename': 'x.spd'}``,
    ``{'type': 'blackbody', 'temperature': T, 'scale': s}`` -> RGB (see
    :mod:`lumigrad.scene.spectra`)."""
    from . import spectra

    t = value["type"]
    allowed = {"type", "temperature", "scale"} if t == "blackbody" else \
        {"type", "value", "filename"}
    extra = set(value) - allowed
    if extra:
        raise SceneLoadError(f"{where}: unexpected keys {sorted(extra)} in a {t} value; "
                             f"accepted: {sorted(allowed - {'type'})}")
    try:
        if t == "blackbody":
            if "temperature" not in value:
                raise ValueError("a black body needs a 'temperature' (kelvin)")
            return spectra.blackbody_rgb(float(value["temperature"]),
                                         float(value.get("scale", 1.0)))
        if "filename" in value:
            if "value" in value:
                raise ValueError("give either 'value' or 'filename'")
            wl, vals = spectra.read_spd(os.fspath(value["filename"]))
        elif isinstance(value["value"], str):
            wl, vals = spectra.parse_wavelength_pairs(value["value"])
        else:
            arr = np.asarray(value["value"], dtype=np.float64)
            wl, vals = list(arr[:, 0]), list(arr[:, 1])
        return spectra.spectrum_to_rgb(wl, vals, illuminant=in_emitter,
                                       bounded=key not in spectra.UNBOUNDED_PROPERTIES)
    except (TypeError, ValueError) as e:
        raise SceneLoadError(f"{where}: {t}: {e}") from None


def _color_value(tag: str, raw: Any, where: str) -> Any:
    arr = np.asarray(raw, dtype=np.float64).reshape(-1)
    if arr.size not in (1, 3):
        raise SceneLoadError(f"{where}: a {tag} value needs 1 or 3 numbers, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise SceneLoadError(f"{where}: {tag} value {raw!r} is not finite (NaN or inf)")
    if tag == "srgb":
        from .xml import srgb_to_linear

        arr = srgb_to_linear(arr)
    if arr.size == 1:
        return (float(arr[0]),) * 3 if tag in ("rgb", "srgb") else float(arr[0])
    return tuple(float(x) for x in arr)


def _dict_object(d: dict, where: str, name: Optional[str] = None,
                 id: Optional[str] = None, in_emitter: bool = False) -> ObjectDesc:
    t = d.get("type")
    if not isinstance(t, str):
        raise SceneLoadError(f"{where}: every plugin dict needs a string 'type' entry")
    ensure_plugins()
    in_emitter = in_emitter or ("emitter", t) in REGISTRY
    oid = d.get("id", id)
    desc = ObjectDesc(category=None, type=t, id=oid, name=name, where=where)
    for k, v in d.items():
        if k in ("type", "id"):
            continue
        if not isinstance(k, str):
            raise SceneLoadError(f"{where}: keys must be strings, got {k!r}")
        item = _dict_value(k, v, _dict_path(where, k), in_emitter)
        if isinstance(item, PropDesc):
            desc.props.append(item)
        else:
            desc.children.append(item)
    return desc


class _DictBuilder(_Builder):
    """The builder, plus the dict form's key-to-parameter binding rule."""

    def _build(self, desc: ObjectDesc, allowed: tuple) -> Any:
        category = desc.category or self.infer_category(desc, allowed)
        cls = REGISTRY.get((category, desc.type))
        params = getattr(cls, "PARAMS", {}) if cls is not None else {}
        names = set(params) | {a for p in params.values() for a in getattr(p, "aliases", ())}
        for c in desc.children:
            if isinstance(c, ObjectDesc) and c.type in MEDIUM_TYPES:
                raise SceneLoadError(unsupported_message(c.where, "medium", c.type))
            if c.name is not None and c.name not in names and \
                    _camel_to_snake(c.name) not in names:
                # Mitsuba style: the key of a nested object is its id, not a parameter.
                if isinstance(c, ObjectDesc):
                    if c.id is None:
                        c.id = c.name
                        if c.id in self.decls:
                            raise SceneLoadError(f"{c.where}: duplicate id '{c.id}' (first "
                                                 f"declared at {self.decls[c.id].where})")
                        self.decls[c.id] = c
                c.name = None
        # props given as plugin instances under a non-parameter key: unnamed children
        for pr in list(desc.props):
            if pr.tag == "instance" and pr.name not in names and \
                    _camel_to_snake(pr.name) not in names:
                cat = self.category_of.get(id(pr.value)) or self._category_of_instance(pr.value)
                objs = [n for n, p in params.items() if p.kind in ("object", "objects")
                        and p.category == cat]
                if objs:
                    pr.name = objs[0]
        return super()._build(desc, allowed)

    @staticmethod
    def _category_of_instance(obj: Any) -> Optional[str]:
        plugin = getattr(type(obj), "PLUGIN", None)
        return plugin[0] if plugin else None

    def convert(self, prop: PropDesc, p: Param, pname: str, owner: str) -> Any:
        if prop.tag == "instance":
            cat = self._category_of_instance(prop.value)
            want = "texture" if p.kind == "texture" else p.category
            if p.kind not in ("texture", "object", "objects"):
                raise SceneLoadError(f"{prop.where}: {owner}, parameter '{pname}': expected a "
                                     f"{p.kind} value, got a {type(prop.value).__name__} object")
            if want and cat and cat != want:
                raise SceneLoadError(f"{prop.where}: {owner}, parameter '{pname}': expected a "
                                     f"{want}, got a {cat} ({type(prop.value).__name__})")
            if cat:
                self.category_of[id(prop.value)] = cat
        return super().convert(prop, p, pname, owner)


def instantiate_dict(d: dict) -> Any:
    """Instantiate Mitsuba's dict form without building a ``Scene``.

    For ``{'type': 'scene', ...}`` returns the same dict as
    :func:`instantiate_file`; for a single plugin dict (``{'type': 'diffuse',
    ...}``) returns that plugin object.
    """
    if not isinstance(d, dict):
        raise SceneLoadError(f"scene: expected a dict, got {type(d).__name__}")
    if d.get("type") != "scene":
        desc = _dict_object(d, "scene" if "type" not in d else "dict")
        b = _DictBuilder("<dict>", None)
        b.collect([desc])
        return b.build(desc, _TOP_PRIORITY)
    descs = []
    for k, v in d.items():
        if k == "type":
            continue
        where = _dict_path("scene", k)
        if not isinstance(v, dict):
            raise SceneLoadError(f"{where}: top-level entries of a scene dict must be plugin "
                                 f"dicts, got {type(v).__name__}")
        if v.get("type") in _VALUE_TYPES:
            raise SceneLoadError(f"{where}: a '{v.get('type')}' cannot appear at the top level "
                                 "of a scene")
        descs.append(_dict_object(v, where, id=str(k)))
    b = _DictBuilder("<dict>", None)
    b.collect(descs)
    return _assemble(b, descs, _TOP_PRIORITY, xml=False)


def load_dict(d: dict, *, accel: Optional[str] = None) -> Any:
    """Load Mitsuba's dict form: ``{'type': 'scene', 'id': {'type': ..., ...}}``
    gives a :class:`~lumigrad.scene.scene.Scene`; a single plugin dict gives
    that plugin object (as ``mitsuba.load_dict`` does).

    Values: nested dicts for objects, ``{'type': 'rgb', 'value': [r, g, b]}``
    for colours, plain floats/ints/bools/strings, ``Transform4f`` or 4x4
    lists/arrays for transforms, 3-sequences for points/vectors/colours,
    ``{'type': 'ref', 'id': ...}`` for references, or already-created plugin
    objects. Errors name the dict path, e.g. ``scene['green-wall']['bsdf']``.
    ``accel``: the ray-tracing core, as for :func:`load_file`.
    """
    parts = instantiate_dict(d)
    if isinstance(parts, dict) and set(parts) == {"shapes", "emitters", "sensors",
                                                  "integrator", "ids"}:
        return _scene_from(parts, "scene", accel)
    return parts
