"""Parsing Mitsuba scene XML into plugin descriptions.

This module turns a file in Mitsuba 3's format (``<scene version="3.0.0">``),
or the older ``0.6.0`` dialect that PSDR scenes use, into
:class:`ObjectDesc` trees: plugin category, type, id, the typed property
values and nested objects, each with its location (``file:line``). The
loader (:mod:`lumigrad.scene.loader`) then checks the descriptions against the
plugins' parameter schemas and instantiates them; the dict form of a scene is
converted into the same descriptions, so both share one validation path.

What this module handles itself, with an error naming the file and line:

* XML syntax (expat's line and column);
* ``<default name value>`` and ``$name`` substitution in every attribute, with
  keyword overrides (an undefined ``$x`` is an error; an override the scene
  never uses gives a warning with close matches);
* value tags: ``float``, ``integer``, ``boolean``, ``string``, ``rgb``,
  ``srgb`` (converted to linear with the sRGB transfer curve, IEC 61966-2-1),
  ``spectrum`` (one value: grey; or 3 values), ``point``, ``vector``,
  ``transform`` and ``ref``; value syntax and arity, NaN/inf;
* ``<transform>`` operations ``translate``, ``rotate``, ``scale``, ``matrix``,
  ``lookat`` (``lookAt``), composed as Mitsuba does: each new operation
  left-multiplies the matrix so far, i.e. is applied after the previous ones;
* ``<include filename>``;
* ``<path value>``: a folder (relative to the file that declares it) added in
  front of the search path of relative file names, as Mitsuba's file resolver
  does (later ``<path>`` elements are searched first, then the scene file's
  folder, then the working directory); a missing folder is an error;
* ``<medium>`` elements and other participating-media constructs give a
  "not supported yet" error naming the file and line;
* the camelCase spellings of the 0.6 dialect are resolved by the loader.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union
from xml.parsers import expat

import numpy as np

__all__ = ["SceneLoadError", "UNSUPPORTED", "MITSUBA_PLUGINS", "unsupported_message", "ObjectDesc", "PropDesc", "RefDesc", "parse_xml",
           "CATEGORIES", "VALUE_TAGS", "srgb_to_linear", "transform_op_matrix"]

#: XML tags of plugin objects (= registry categories)
CATEGORIES = ("shape", "bsdf", "texture", "emitter", "sensor", "film", "rfilter",
              "sampler", "integrator")
#: XML tags of property values
VALUE_TAGS = ("float", "integer", "boolean", "string", "rgb", "srgb", "spectrum",
              "blackbody", "point", "vector", "transform", "ref")
SUPPORTED_VERSIONS = ("0.5", "0.6", "2.", "3.")


class SceneLoadError(ValueError):
    """A scene description is invalid; the message starts with its location."""


@dataclass
class PropDesc:
    """A named value: ``tag`` is the XML tag it came from (or the equivalent
    dict form), ``value`` its parsed Python value."""
    name: str
    tag: str
    value: Any
    where: str


@dataclass
class RefDesc:
    """A reference to an object declared with ``id`` (optionally bound to ``name``)."""
    id: str
    name: Optional[str]
    where: str


@dataclass
class ObjectDesc:
    """A plugin object to create. ``category`` may be ``None`` in the dict form
    until the loader infers it from the type name and the context."""
    category: Optional[str]
    type: str
    id: Optional[str]
    name: Optional[str]
    where: str
    props: list = field(default_factory=list)      # list[PropDesc]
    children: list = field(default_factory=list)   # list[ObjectDesc | RefDesc]


# --------------------------------------------------------------------------- unsupported
#: Mitsuba 3 plugins that lumigrad does not implement yet, with what to do instead.
UNSUPPORTED = {
    ("medium", None): "participating media are not supported yet; remove the <medium> "
                      "(and the interior/exterior references to it) to render the surfaces "
                      "alone",
    ("shape", "bsplinecurve"): "curves are not supported yet; convert the curve to a "
                               "triangle mesh (obj/ply) to render it",
    ("shape", "linearcurve"): "curves are not supported yet; convert the curve to a "
                              "triangle mesh (obj/ply) to render it",
    ("shape", "sdfgrid"): "SDF grids are not supported yet; extract a triangle mesh (e.g. "
                          "marching cubes) and load it as obj/ply",
    ("shape", "ellipsoids"): "ellipsoid shapes are not supported yet",
    ("shape", "ellipsoidsmesh"): "ellipsoid shapes are not supported yet",
    ("phase", None): "phase functions (participating media) are not supported yet",
    ("volume", None): "volume data (participating media) are not supported yet",
    ("emitter", "volumelight"): "volume emitters (participating media) are not supported yet",
    ("emitter", "sunsky"): "the sunsky emitter is not supported yet; render the sky into an "
                           "environment map and use 'envmap'",
    ("sensor", "radiancemeter"): "radiance meters are not supported yet; use a 1x1 "
                                 "perspective sensor with a tiny fov",
    ("sensor", "irradiancemeter"): "irradiance meters are not supported yet",
    ("sensor", "distant"): "distant sensors are not supported yet",
    ("sensor", "batch"): "batch sensors are not supported yet; render each sensor with "
                         "render(scene, sensor=i)",
    ("integrator", "ptracer"): "the particle tracer is not supported yet; use 'path'",
    ("integrator", "stokes"): "polarized rendering is not supported (lumigrad renders RGB)",
    ("film", "specfilm"): "spectral films are not supported (lumigrad renders RGB); use "
                          "'hdrfilm'",
    ("film", "ldrfilm"): "Mitsuba 0.6's tonemapping film is not supported (nor by Mitsuba 3); "
                         "use 'hdrfilm' (lumigrad's images are linear radiance; "
                         "lumigrad.write_image tonemaps PNG files)",
}
#: plugin types of media, by Mitsuba's names (dict form: their category is not known)
MEDIUM_TYPES = ("homogeneous", "heterogeneous")

#: Mitsuba 3's plugins by category (its plugin documentation): a name here that
#: lumigrad has not registered gets a "not supported yet" error rather than
#: "unknown plugin" (which suggests a typo).
MITSUBA_PLUGINS = {
    "bsdf": ("blendbsdf", "bumpmap", "circular", "conductor", "dielectric", "diffuse", "hair",
             "mask", "measured", "measured_polarized", "normalmap", "null", "plastic",
             "polarizer", "pplastic", "principled", "principledthin", "retarder",
             "roughconductor", "roughdielectric", "roughplastic", "thindielectric",
             "twosided"),
    "emitter": ("area", "constant", "directional", "directionalarea", "envmap", "point",
                "projector", "spot", "sunsky", "volumelight"),
    "film": ("hdrfilm", "specfilm"),
    "integrator": ("aov", "depth", "direct", "direct_projective", "moment", "path", "prb",
                   "prb_basic", "prb_projective", "prbvolpath", "ptracer", "stokes",
                   "volpath", "volpathmis"),
    "rfilter": ("box", "tent", "gaussian", "mitchell", "catmullrom", "lanczos"),
    "sampler": ("independent", "stratified", "multijitter", "orthogonal", "ldsampler"),
    "sensor": ("perspective", "thinlens", "orthographic", "radiancemeter", "irradiancemeter",
               "distant", "batch"),
    "shape": ("obj", "ply", "serialized", "cube", "rectangle", "disk", "sphere", "cylinder",
              "shapegroup", "instance", "bsplinecurve", "linearcurve", "sdfgrid", "ellipsoids",
              "ellipsoidsmesh", "merge"),
    "texture": ("bitmap", "checkerboard", "mesh_attribute", "volume"),
}


def unsupported_message(where: str, category: str, type_name: str) -> str:
    """The "not supported yet" message for a Mitsuba plugin lumigrad lacks."""
    if type_name in MEDIUM_TYPES:
        category = "medium"
    advice = UNSUPPORTED.get((category, type_name)) or UNSUPPORTED.get((category, None)) or \
        ("it is a Mitsuba 3 plugin that lumigrad does not implement yet; replace it with a "
         "supported one of its kind")
    return (f"{where}: {category} plugin '{type_name}' is not supported yet by lumigrad: "
            f"{advice}")


# --------------------------------------------------------------------------- XML tree
@dataclass
class _Elem:
    tag: str
    attrs: dict
    line: int
    file: str
    children: list = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


_XML_ENCODING_RE = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _check_utf8(data: bytes, file: str) -> None:
    """A file that declares no encoding (or UTF-8) must be UTF-8. expat reports a
    stray byte (e.g. a Latin-1 letter in a file name) as "not well-formed
    (invalid token)"; say that it is an encoding problem, and where."""
    m = _XML_ENCODING_RE.match(data)
    if m is not None and m.group(1).decode("ascii").lower().replace("_", "-") not in (
            "utf-8", "utf8"):
        return  # another declared encoding: expat decodes it (latin-1, utf-16, ...)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise SceneLoadError(
            f"{file}:{line}:{col}: encoding problem: byte 0x{data[e.start]:02x} is not valid "
            "UTF-8 (the file declares no other encoding, so it is read as UTF-8; a file name "
            "or string with a Latin-1/Windows-1252 character?). Save the file as UTF-8, or "
            "declare its encoding in the first line, e.g. <?xml version=\"1.0\" "
            "encoding=\"latin-1\"?>") from None


def _parse_tree(text: Union[str, bytes], file: str) -> _Elem:
    """Parse XML with expat, keeping the line of every element."""
    if isinstance(text, (bytes, bytearray)):
        _check_utf8(bytes(text), file)
    parser = expat.ParserCreate()
    stack: list[_Elem] = []
    root: list[_Elem] = []

    def start(tag: str, attrs: dict) -> None:
        e = _Elem(tag, attrs, parser.CurrentLineNumber, file)
        if stack:
            stack[-1].children.append(e)
        else:
            root.append(e)
        stack.append(e)

    def end(tag: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if data.strip() and stack:
            raise SceneLoadError(f"{file}:{parser.CurrentLineNumber}: unexpected text "
                                 f"{data.strip()[:40]!r} inside <{stack[-1].tag}> (Mitsuba "
                                 "scene elements carry their values in attributes)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text, True)
    except expat.ExpatError as e:
        raise SceneLoadError(f"{file}:{e.lineno}:{e.offset + 1}: malformed XML: "
                             f"{expat.ErrorString(e.code)}") from None
    return root[0]


# --------------------------------------------------------------------------- values
_FLOAT_RE = re.compile(r"[,\s]+")


def _floats(text: str, where: str, what: str) -> list[float]:
    parts = [p for p in _FLOAT_RE.split(text.strip()) if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise SceneLoadError(f"{where}: {what}: cannot parse {text!r} as numbers") from None
    for v in vals:
        if not math.isfinite(v):
            raise SceneLoadError(f"{where}: {what}: value {text!r} is not finite (NaN or inf)")
    return vals


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB electro-optical transfer function (IEC 61966-2-1):
    ``c / 12.92`` for ``c <= 0.04045``, else ``((c + 0.055) / 1.055) ** 2.4``."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _color(tag: str, value: str, where: str, what: str) -> Any:
    """rgb / srgb / spectrum value -> tuple of 3 floats (or a float for a
    single-valued spectrum)."""
    value = value.strip()
    if tag == "srgb" and value.startswith("#"):
        h = value[1:]
        if len(h) != 6 or not all(ch in "0123456789abcdefABCDEF" for ch in h):
            raise SceneLoadError(f"{where}: {what}: '{value}' is not a #rrggbb colour")
        vals = [int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)]
    else:
        if tag == "spectrum" and ":" in value:
            raise SceneLoadError(f"{where}: {what}: wavelength:value spectra are not supported "
                                 "(lumigrad renders in RGB); give one grey value or 'r, g, b'")
        vals = _floats(value, where, what)
    if len(vals) not in (1, 3):
        raise SceneLoadError(f"{where}: {what}: <{tag}> needs 1 or 3 values, got {len(vals)} "
                             f"({value!r})")
    if tag == "srgb":
        vals = [float(x) for x in srgb_to_linear(np.array(vals))]
    if len(vals) == 1:
        return (vals[0],) * 3 if tag in ("rgb", "srgb") else vals[0]
    return tuple(vals)


# --------------------------------------------------------------------------- transforms
def _unit(v: np.ndarray, where: str, what: str) -> np.ndarray:
    n = np.linalg.norm(v)
    if n < 1e-12:
        raise SceneLoadError(f"{where}: {what} must not be the zero vector")
    return v / n


def transform_op_matrix(op: str, args: dict, where: str) -> np.ndarray:
    """4x4 float64 matrix of one ``<transform>`` operation from its attributes.

    * ``translate``: ``x, y, z`` (default 0) or ``value="x, y, z"``
    * ``rotate``: axis ``x, y, z`` or ``value``, ``angle`` in degrees,
      right-handed (Rodrigues' formula)
    * ``scale``: ``x, y, z`` (default 1), or ``value`` (one uniform or three)
    * ``matrix``: ``value`` with 16 numbers (row-major 4x4) or 9 (3x3)
    * ``lookat``: ``origin``, ``target``, ``up`` -> camera-to-world with local
      +Z towards the target, +X = normalize(cross(up, dir)), +Y = cross(dir, +X)
    """
    def vec(name: str, default: Optional[float]) -> float:
        if name in args:
            v = _floats(args[name], where, f"<{op}> attribute '{name}'")
            if len(v) != 1:
                raise SceneLoadError(f"{where}: <{op}> attribute '{name}' needs one number, "
                                     f"got {args[name]!r}")
            return v[0]
        if default is None:
            raise SceneLoadError(f"{where}: <{op}> needs the attribute '{name}'")
        return default

    def triple(name: str) -> np.ndarray:
        v = _floats(args[name], where, f"<{op}> attribute '{name}'")
        if len(v) != 3:
            raise SceneLoadError(f"{where}: <{op}> attribute '{name}' needs 3 numbers, "
                                 f"got {len(v)} ({args[name]!r})")
        return np.array(v)

    def xyz(default: float) -> np.ndarray:
        if "value" in args:
            if any(k in args for k in "xyz"):
                raise SceneLoadError(f"{where}: <{op}> takes either 'value' or x/y/z, not both")
            return triple("value")
        return np.array([vec("x", default), vec("y", default), vec("z", default)])

    allowed = {"translate": {"x", "y", "z", "value"}, "rotate": {"x", "y", "z", "value", "angle"},
               "scale": {"x", "y", "z", "value"}, "matrix": {"value"},
               "lookat": {"origin", "target", "up"}}[op]
    extra = set(args) - allowed
    if extra:
        raise SceneLoadError(f"{where}: <{op}> has unknown attribute(s) {sorted(extra)}; "
                             f"accepted: {sorted(allowed)}")
    m = np.eye(4)
    if op == "translate":
        m[:3, 3] = xyz(0.0)
    elif op == "scale":
        if "value" in args and not any(k in args for k in "xyz"):
            v = _floats(args["value"], where, "<scale> attribute 'value'")
            if len(v) not in (1, 3):
                raise SceneLoadError(f"{where}: <scale> value needs 1 or 3 numbers, got {len(v)}")
            s = np.array(v * 3 if len(v) == 1 else v)
        else:
            s = xyz(1.0)
        m[:3, :3] = np.diag(s)
    elif op == "rotate":
        axis = _unit(xyz(0.0), where, "the rotation axis")
        if "angle" not in args:
            raise SceneLoadError(f"{where}: <rotate> needs the attribute 'angle' (degrees)")
        ang = math.radians(vec("angle", None))
        x, y, z = axis
        c, s = math.cos(ang), math.sin(ang)
        k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
        m[:3, :3] = c * np.eye(3) + s * k + (1 - c) * np.outer(axis, axis)
    elif op == "matrix":
        if "value" not in args:
            raise SceneLoadError(f"{where}: <matrix> needs the attribute 'value'")
        v = _floats(args["value"], where, "<matrix> value")
        if len(v) == 16:
            m = np.array(v).reshape(4, 4)
        elif len(v) == 9:
            m[:3, :3] = np.array(v).reshape(3, 3)
        else:
            raise SceneLoadError(f"{where}: <matrix> needs 16 (4x4) or 9 (3x3) numbers, "
                                 f"got {len(v)}")
    else:  # lookat
        for k in ("origin", "target"):
            if k not in args:
                raise SceneLoadError(f"{where}: <lookat> needs the attribute '{k}'")
        o, t = triple("origin"), triple("target")
        d = _unit(t - o, where, "target - origin of <lookat>")
        up = triple("up") if "up" in args else None
        if up is None:
            # Any vector not parallel to d.
            up = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        left = np.cross(_unit(up, where, "'up' of <lookat>"), d)
        if np.linalg.norm(left) < 1e-7:
            raise SceneLoadError(f"{where}: <lookat> 'up' is parallel to the viewing direction")
        left /= np.linalg.norm(left)
        new_up = np.cross(d, left)
        m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = left, new_up, d, o
    return m


# --------------------------------------------------------------------------- parser
_SUBST = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ATTRS = {
    "float": {"name", "value"}, "integer": {"name", "value"}, "boolean": {"name", "value"},
    "string": {"name", "value"}, "rgb": {"name", "value", "intent"},
    "srgb": {"name", "value", "intent"},
    "spectrum": {"name", "value", "intent", "filename", "type"},
    "blackbody": {"name", "temperature", "scale"},
    "point": {"name", "value", "x", "y", "z"}, "vector": {"name", "value", "x", "y", "z"},
    "transform": {"name"}, "ref": {"name", "id"},
}


class _XMLParser:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.defaults: dict[str, str] = {}
        self.default_where: dict[str, str] = {}
        self.overrides = {k: self._fmt(v) for k, v in overrides.items()}
        self.used: set[str] = set()
        self.include_stack: list[str] = []
        #: folders of ``<path>`` elements, most recent first (searched in this order)
        self.paths: list[str] = []

    @staticmethod
    def _fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return ", ".join(str(x) for x in v)
        return str(v)

    # -- attributes with $substitution ---------------------------------------
    def attr(self, e: _Elem, name: str, required: bool = True) -> Optional[str]:
        if name not in e.attrs:
            if required:
                raise SceneLoadError(f"{e.where}: <{e.tag}> needs the attribute '{name}'")
            return None
        return self.subst(e.attrs[name], e, name)

    def subst(self, text: str, e: _Elem, attr: str) -> str:
        def rep(m: re.Match) -> str:
            key = m.group(1)
            self.used.add(key)
            if key in self.overrides:
                return self.overrides[key]
            if key in self.defaults:
                return self.defaults[key]
            known = sorted(set(self.defaults) | set(self.overrides))
            raise SceneLoadError(
                f"{e.where}: <{e.tag}> attribute '{attr}' uses ${key}, which is not defined "
                f"(declare <default name=\"{key}\" value=\"...\"/> or pass {key}=... when "
                f"loading){'; defined: ' + ', '.join(known) if known else ''}")
        return _SUBST.sub(rep, text)

    def attrs(self, e: _Elem) -> dict[str, str]:
        return {k: self.subst(v, e, k) for k, v in e.attrs.items()}

    def check_attrs(self, e: _Elem, allowed: set) -> None:
        extra = set(e.attrs) - allowed
        if extra:
            raise SceneLoadError(f"{e.where}: <{e.tag}> has unknown attribute(s) "
                                 f"{', '.join(sorted(extra))}; accepted: {', '.join(sorted(allowed))}")

    # -- document ------------------------------------------------------------
    def parse_file(self, path: str) -> tuple[list, str]:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"scene file {path!r} does not exist")
        with open(path, "rb") as fh:
            data = fh.read()
        return self.parse_text(data, path), path

    def parse_text(self, text: Union[str, bytes], file: str) -> list:
        root = _parse_tree(text, file)
        if root.tag != "scene":
            raise SceneLoadError(f"{root.where}: the root element must be <scene>, "
                                 f"got <{root.tag}>")
        self.check_attrs(root, {"version"})
        version = root.attrs.get("version")
        if version is None:
            raise SceneLoadError(f"{root.where}: <scene> needs a version attribute, e.g. "
                                 "<scene version=\"3.0.0\">")
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version) or \
                not any(version.startswith(v) for v in SUPPORTED_VERSIONS):
            raise SceneLoadError(f"{root.where}: unsupported scene version {version!r} "
                                 "(lumigrad reads Mitsuba 3.x files and the 0.6 dialect "
                                 "used by PSDR)")
        # Defaults first (they apply to the whole file, as overrides do).
        for c in root.children:
            if c.tag == "default":
                self.check_attrs(c, {"name", "value"})
                name = c.attrs.get("name")
                if name is None or "value" not in c.attrs:
                    raise SceneLoadError(f"{c.where}: <default> needs 'name' and 'value'")
                if name in self.defaults:
                    raise SceneLoadError(f"{c.where}: duplicate <default name=\"{name}\"> "
                                         f"(first at {self.default_where[name]})")
                self.defaults[name] = self.subst(c.attrs["value"], c, "value")
                self.default_where[name] = c.where
        out: list = []
        for c in root.children:
            if c.tag == "default":
                continue
            if c.tag == "include":
                out.extend(self.include(c))
            elif c.tag == "path":
                self.path(c)
            elif c.tag == "medium":
                raise SceneLoadError(unsupported_message(c.where, "medium",
                                                         c.attrs.get("type", "?")))
            elif c.tag in CATEGORIES:
                out.append(self.object(c))
            elif c.tag in VALUE_TAGS:
                raise SceneLoadError(f"{c.where}: <{c.tag}> is a property and cannot appear "
                                     "directly inside <scene>")
            else:
                raise SceneLoadError(
                    f"{c.where}: unknown element <{c.tag}> in <scene>; known: "
                    f"{', '.join(CATEGORIES + ('default', 'include', 'path'))}")
        return out

    def path(self, e: _Elem) -> None:
        """``<path value="folder"/>``: prepend a folder to the file search path."""
        self.check_attrs(e, {"value"})
        if e.children:
            raise SceneLoadError(f"{e.where}: <path> cannot contain elements")
        folder = self.attr(e, "value")
        full = folder if os.path.isabs(folder) else \
            os.path.join(os.path.dirname(os.path.abspath(e.file)) if e.file != "<string>"
                         else os.getcwd(), folder)
        if not os.path.isdir(full):
            raise SceneLoadError(f"{e.where}: <path value=\"{folder}\">: folder not found "
                                 f"(looked for {full})")
        full = os.path.normpath(full)
        if full in self.paths:
            self.paths.remove(full)
        self.paths.insert(0, full)

    def include(self, e: _Elem) -> list:
        self.check_attrs(e, {"filename"})
        fn = self.attr(e, "filename")
        path = fn if os.path.isabs(fn) else os.path.join(os.path.dirname(e.file), fn)
        if not os.path.exists(path):
            # (as Mitsuba's resolver: the folders of <path> elements too)
            found = self.find_file(fn, e)
            if os.path.exists(found):
                path = found
        if not os.path.exists(path):
            raise SceneLoadError(f"{e.where}: included file {fn!r} not found (looked for {path}"
                                 f"{' and in ' + ', '.join(self.paths) if self.paths else ''})")
        real = os.path.realpath(path)
        if real in self.include_stack:
            raise SceneLoadError(f"{e.where}: recursive <include> of {fn!r}")
        self.include_stack.append(real)
        try:
            with open(path, "rb") as fh:
                return self.parse_text(fh.read(), path)
        finally:
            self.include_stack.pop()

    # -- objects and properties ------------------------------------------------
    def object(self, e: _Elem, in_emitter: bool = False) -> ObjectDesc:
        """A plugin element; ``in_emitter``: inside an ``<emitter>`` (spectra
        there are illuminants, see :mod:`.spectra`)."""
        in_emitter = in_emitter or e.tag == "emitter"
        self.check_attrs(e, {"type", "id", "name"})
        desc = ObjectDesc(category=e.tag, type=self.attr(e, "type"), id=self.attr(e, "id", False),
                          name=self.attr(e, "name", False), where=e.where)
        for c in e.children:
            if c.tag in CATEGORIES:
                desc.children.append(self.object(c, in_emitter))
            elif c.tag == "ref":
                self.check_attrs(c, _ATTRS["ref"])
                desc.children.append(RefDesc(id=self.attr(c, "id"),
                                             name=self.attr(c, "name", False), where=c.where))
            elif c.tag in VALUE_TAGS:
                desc.props.append(self.prop(c, in_emitter))
            elif c.tag == "medium":
                raise SceneLoadError(unsupported_message(c.where, "medium",
                                                         c.attrs.get("type", "?")))
            elif c.tag in ("default", "include", "path"):
                raise SceneLoadError(f"{c.where}: <{c.tag}> must be a direct child of <scene>")
            else:
                raise SceneLoadError(
                    f"{c.where}: unknown element <{c.tag}> inside <{e.tag}>; known: "
                    f"{', '.join(VALUE_TAGS + CATEGORIES)}")
        return desc

    def prop(self, e: _Elem, in_emitter: bool = False) -> PropDesc:
        tag = e.tag
        self.check_attrs(e, _ATTRS[tag])
        name = self.attr(e, "name", required=True)
        what = f"<{tag} name=\"{name}\">"
        where = e.where
        if tag == "transform":
            return PropDesc(name, tag, self.transform(e), where)
        if tag == "blackbody" or (tag == "spectrum" and
                                  ("type" in e.attrs or "filename" in e.attrs)):
            return PropDesc(name, "spectrum", self.spectrum(e, what, in_emitter, name), where)
        if e.children:
            raise SceneLoadError(f"{where}: {what} cannot contain <{e.children[0].tag}>")
        if tag in ("point", "vector"):
            a = self.attrs(e)
            if "value" in a:
                if any(k in a for k in "xyz"):
                    raise SceneLoadError(f"{where}: {what} takes either 'value' or x/y/z")
                v = _floats(a["value"], where, what)
                if len(v) != 3:
                    raise SceneLoadError(f"{where}: {what} needs 3 numbers, got {len(v)} "
                                         f"({a['value']!r})")
            else:
                v = [_floats(a[k], where, what)[0] if k in a else 0.0 for k in "xyz"]
            return PropDesc(name, tag, tuple(v), where)
        value = self.attr(e, "value")
        if tag == "float":
            v = _floats(value, where, what)
            if len(v) != 1:
                raise SceneLoadError(f"{where}: {what} needs one number, got {value!r}")
            return PropDesc(name, tag, v[0], where)
        if tag == "integer":
            try:
                iv = int(value.strip())
            except ValueError:
                raise SceneLoadError(f"{where}: {what}: {value!r} is not an integer") from None
            return PropDesc(name, tag, iv, where)
        if tag == "boolean":
            low = value.strip().lower()
            if low not in ("true", "false"):
                raise SceneLoadError(f"{where}: {what}: {value!r} is not a boolean "
                                     "(use true or false)")
            return PropDesc(name, tag, low == "true", where)
        if tag == "string":
            return PropDesc(name, tag, value, where)
        if tag == "spectrum" and ":" in value:
            from . import spectra
            try:
                wl, vals = spectra.parse_wavelength_pairs(value)
                rgb = spectra.spectrum_to_rgb(
                    wl, vals, illuminant=in_emitter,
                    bounded=name not in spectra.UNBOUNDED_PROPERTIES)
            except ValueError as err:
                raise SceneLoadError(f"{where}: {what}: {err}") from None
            return PropDesc(name, tag, rgb, where)
        # rgb / srgb / spectrum
        return PropDesc(name, tag, _color(tag, value, where, what), where)

    def spectrum(self, e: _Elem, what: str, in_emitter: bool, name: str = "") -> tuple:
        """``<blackbody temperature scale>`` (0.5/0.6), ``<spectrum type="blackbody">``
        with nested ``temperature``/``scale`` floats (3.x), or ``<spectrum
        filename="x.spd">`` -> an RGB triple (see :mod:`.spectra`)."""
        from . import spectra

        where = e.where
        a = self.attrs(e)
        try:
            if e.tag == "blackbody" or a.get("type") == "blackbody":
                args = {k: a[k] for k in ("temperature", "scale") if k in a}
                for c in e.children:
                    if c.tag != "float" or c.attrs.get("name") not in ("temperature", "scale"):
                        raise SceneLoadError(f"{c.where}: {what}: a black body takes <float "
                                             "name=\"temperature\"> and <float name=\"scale\">")
                    args[c.attrs["name"]] = self.attr(c, "value")
                if "temperature" not in args:
                    raise SceneLoadError(f"{where}: {what}: a black body needs a temperature "
                                         "(kelvin)")
                t = _floats(args["temperature"].strip().rstrip("kK"), where,
                            f"{what} temperature")
                sc = _floats(args.get("scale", "1"), where, f"{what} scale")
                if len(t) != 1 or len(sc) != 1:
                    raise SceneLoadError(f"{where}: {what}: temperature and scale are one "
                                         "number each")
                return spectra.blackbody_rgb(t[0], sc[0])
            if a.get("type") in ("d65", "srgb", "uniform"):
                return self.simple_spectrum(e, what, a["type"])
            if "type" in a:
                raise SceneLoadError(f"{where}: {what}: spectrum type {a['type']!r} is not "
                                     "supported yet (supported: blackbody, d65, srgb, "
                                     "uniform, or value / filename)")
            if e.children:
                raise SceneLoadError(f"{where}: {what} cannot contain <{e.children[0].tag}>")
            if "value" in a:
                raise SceneLoadError(f"{where}: {what} takes either 'value' or 'filename'")
            fn = a["filename"]
            path = self.find_file(fn, e)
            wl, vals = spectra.read_spd(path)
            return spectra.spectrum_to_rgb(wl, vals, illuminant=in_emitter,
                                           bounded=name not in spectra.UNBOUNDED_PROPERTIES)
        except ValueError as err:
            if isinstance(err, SceneLoadError):
                raise
            raise SceneLoadError(f"{where}: {what}: {err}") from None

    def simple_spectrum(self, e: _Elem, what: str, kind: str) -> tuple:
        """Mitsuba 3's ``<spectrum type="d65|srgb|uniform">`` in its RGB variants:
        ``d65`` is ``color`` (default white) times ``scale``, ``srgb`` its linear
        ``color``, ``uniform`` the grey ``value`` (checked with Mitsuba 3.9.1)."""
        allowed = {"d65": {"color", "scale"}, "srgb": {"color"}, "uniform": {"value"}}[kind]
        vals = {"color": (1.0, 1.0, 1.0), "scale": 1.0, "value": 1.0}
        for c in e.children:
            pname = c.attrs.get("name")
            if pname not in allowed or c.tag not in ("float", "rgb"):
                raise SceneLoadError(f"{c.where}: {what}: a '{kind}' spectrum takes "
                                     f"{', '.join(sorted(allowed))}")
            v = _floats(self.attr(c, "value"), c.where, f"{what} {pname}")
            if len(v) not in (1, 3) or (pname != "color" and len(v) != 1):
                raise SceneLoadError(f"{c.where}: {what}: {pname} needs "
                                     f"{'1 or 3 numbers' if pname == 'color' else 'a number'}")
            vals[pname] = tuple(v * 3 if len(v) == 1 else v) if pname == "color" else v[0]
        if kind == "uniform":
            return (float(vals["value"]),) * 3
        return tuple(float(c) * float(vals["scale"]) for c in vals["color"])  # type: ignore

    def find_file(self, fn: str, e: _Elem) -> str:
        """A file named in the scene: absolute, in a ``<path>`` folder, next to
        the file that names it, or relative to the working directory."""
        if os.path.isabs(fn):
            return fn
        here = os.path.dirname(os.path.abspath(e.file)) if e.file != "<string>" else None
        for folder in self.paths + ([here] if here else []):
            if os.path.exists(os.path.join(folder, fn)):
                return os.path.join(folder, fn)
        return fn

    def transform(self, e: _Elem) -> Any:
        from ..geometry.transform import Transform4f

        m = np.eye(4)
        for c in e.children:
            op = "lookat" if c.tag in ("lookat", "lookAt") else c.tag
            if op not in ("translate", "rotate", "scale", "matrix", "lookat"):
                raise SceneLoadError(f"{c.where}: unknown transform operation <{c.tag}>; known: "
                                     "translate, rotate, scale, matrix, lookat")
            if c.children:
                raise SceneLoadError(f"{c.where}: <{c.tag}> cannot contain elements")
            m = transform_op_matrix(op, self.attrs(c), c.where) @ m
        if not np.all(np.isfinite(m)):
            raise SceneLoadError(f"{e.where}: the transform is not finite")
        return Transform4f(m)


def parse_xml(source: Union[str, bytes], overrides: Optional[dict] = None,
              filename: Optional[str] = None) -> tuple[list, dict]:
    """Parse a scene file (``filename`` given: ``source`` is ignored and the file
    is read) or an XML string. Returns ``(top-level ObjectDescs, info)`` where
    ``info`` has ``file``, ``defaults`` (after overrides) and ``used`` names."""
    overrides = dict(overrides or {})
    p = _XMLParser(overrides)
    if filename is not None:
        descs, file = p.parse_file(filename)
    else:
        file = "<string>"
        descs = p.parse_text(source, file)
    unused = [k for k in overrides if k not in p.used and k not in p.defaults]
    if unused:
        import difflib

        known = sorted(set(p.defaults) | p.used)
        hints = []
        for k in unused:
            close = difflib.get_close_matches(k, known, n=3)
            hints.append(f"{k!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        # A warning, not an error: Mitsuba code passes overrides such as
        # integrator='prb' that a given scene may not declare.
        import warnings

        warnings.warn(f"{file}: parameter override(s) {', '.join(hints)} are not used by "
                      f"this scene; it declares: {', '.join(known) or 'nothing'}", stacklevel=4)
    merged = dict(p.defaults)
    merged.update(p.overrides)
    return descs, {"file": file, "defaults": merged, "used": p.used, "paths": list(p.paths)}
