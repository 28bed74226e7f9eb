from os import PathLike
from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "PathLike[str]"]
_Images = npt.NDArray[np.float32]

class Bundle:
    def __init__(
        self,
        path: _Path,
        *,
        backend: Optional[str] = None,
        precision: Optional[str] = None,
        threads: int = 0,
        mmap: bool = True,
    ) -> None: ...
    @staticmethod
    def from_bytes(
        data: bytes, *, backend: Optional[str] = None, precision: Optional[str] = None, threads: int = 0
    ) -> "Bundle": ...
    @property
    def image_shape(self) -> Tuple[int, int, int]: ...
    @property
    def domains(self) -> Tuple[str, str]: ...
    @overload
    def translate(
        self,
        x: npt.ArrayLike,
        *,
        method: Optional[str] = None,
        source: Optional[str] = None,
        t: Optional[int] = None,
        steps: Optional[int] = None,
        eta: Optional[float] = None,
        tau: Optional[float] = None,
        seed: Optional[int] = None,
        report: Literal[False] = False,
    ) -> _Images: ...
    @overload
    def translate(
        self,
        x: npt.ArrayLike,
        *,
        method: Optional[str] = None,
        source: Optional[str] = None,
        t: Optional[int] = None,
        steps: Optional[int] = None,
        eta: Optional[float] = None,
        tau: Optional[float] = None,
        seed: Optional[int] = None,
        report: Literal[True],
    ) -> Tuple[_Images, dict[str, Any]]: ...
    @overload
    def translate(
        self,
        x: npt.ArrayLike,
        *,
        method: Optional[str] = None,
        source: Optional[str] = None,
        t: Optional[int] = None,
        steps: Optional[int] = None,
        eta: Optional[float] = None,
        tau: Optional[float] = None,
        seed: Optional[int] = None,
        report: bool = ...,
    ) -> Union[_Images, Tuple[_Images, dict[str, Any]]]: ...
    @overload
    def generate(
        self,
        count: int,
        *,
        method: Optional[str] = None,
        domain: Optional[str] = None,
        nfe: Optional[int] = None,
        eta: Optional[float] = None,
        tau: Optional[float] = None,
        seed: Optional[int] = None,
        report: Literal[False] = False,
    ) -> _Images: ...
    @overload
    def generate(
        self,
        count: int,
        *,
        method: Optional[str] = None,
        domain: Optional[str] = None,
        nfe: Optional[int] = None,
        eta: Optional[float] = None,
        tau: Optional[float] = None,
        seed: Optional[int] = None,
        report: Literal[True],
    ) -> Tuple[_Images, dict[str, Any]]: ...
    @overload
    def generate(
        self,
        count: int,
        *,
        method: Optional[str] = None,
        domain: Optional[str] = None,
        nfe: Optional[int] = None,
        eta: Optional[float] = None,
        tau: Optional[float] = None,
        seed: Optional[int] = None,
        report: bool = ...,
    ) -> Union[_Images, Tuple[_Images, dict[str, Any]]]: ...
    def read_images(self, path: _Path, *, resize: bool = False) -> _Images: ...
    def inspect(self) -> dict[str, Any]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Bundle": ...
    def __exit__(self, *args: object) -> None: ...

def _error_kinds() -> list[str]: ...
