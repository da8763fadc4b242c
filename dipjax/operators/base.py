"""The contract every forward model in dipjax follows, and the data convention for real and complex images.

An operator is a frozen pytree dataclass (``flax.struct.dataclass``): its data (masks, kernels, matrices, coil maps)
are pytree leaves, so a batch of problems can carry a different mask per image and ``jax.vmap`` maps over them; its
shapes are static fields. Every operator provides (the deepinv ``Physics`` / scico ``Operator`` shape):

* ``op(x)``: the forward model applied to one image ``x`` of shape ``op.in_shape``;
* ``op.out_shape``: the shape of ``op(x)``, found by abstract evaluation;
* ``op.init_image(y)``: a sensible image made from the measurements alone — what a method means by "the degraded
  image" (aSeqDIP's ``z₀``, Self-Guided DIP's adjoint input, DeepRED's ``x₀``): ``y`` itself for denoising, the
  masked image for inpainting, an intensity-preserving upsampling for super-resolution, ``Aᵀy`` where that is the
  field's back-projection. The default is ``Aᵀy`` for linear operators;
* ``op.display(y)``: the measurements as a picture of the image's size (``degraded.png``, ``psnr_input``): the
  clipped :meth:`view` of :meth:`init_image`;
* ``op.view(x)``: an image as users look at it and as metrics compare it — ``x`` for real images, the magnitude for
  complex ones (below).

Linear operators (:class:`LinearOperator`, ``op.linear`` is True) also provide ``op.adjoint(y)``: by default the
exact transpose that ``jax.linear_transpose`` derives from ``__call__``, replaced by a closed form where that is
cheaper. Nonlinear operators (phase retrieval, a blur seen through a camera response) have no adjoint; every operator
provides ``op.vjp(x, v)``, the vector–Jacobian product ``J_A(x)ᵀ v`` by reverse-mode autodiff, which is all a method
that fits ``A f_θ(z) ≈ y`` by gradient descent needs. A method that needs ``Aᵀ`` (a closed-form linear step, a
data-consistency projection) must refuse an operator without it in one line (none does today: aSeqDIP's MRI
data-consistency step asks for the operator's ``data_consistent`` and says so when it is missing). Every operator of the
task registry is tested (``tests/test_operators.py`` enumerates the registry): a linear one for
``<A x, y> = <x, Aᵀ y>`` in float64 and against an independent implementation, a nonlinear one for its forward model
against an independent implementation and its vector–Jacobian product against finite differences.

**Data convention.** Images are float32 and channels-last: ``(H, W, C)``, natural images in ``[0, 1]``. A *complex*
image (MRI) is stored as two real channels ``(H, W, 2)`` = (real, imaginary), the convention deepinv uses, so the
networks, optimisers, stoppers and metrics of dipjax see only real arrays; an operator whose physics is complex sets
``complex_image = True`` and converts with :func:`to_complex` / :func:`from_complex` inside ``__call__``. Its
``view`` (and hence every PSNR/SSIM and saved PNG) is the magnitude ``|x|`` of shape ``(H, W, 1)``. Measurements may
be complex: multi-coil k-space is complex64 ``(coils, H, W)``, coil maps the same shape. Inner products of complex
measurements are real parts of ``vdot`` (the real inner product of the stacked real and imaginary parts), so the
adjoint of a complex-valued map of a two-channel image is the transpose that ``jax.linear_transpose`` computes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def to_complex(x: jax.Array) -> jax.Array:
    """``(..., H, W, 2)`` real/imaginary channels → complex ``(..., H, W)``."""
    if x.shape[-1] != 2:
        raise ValueError(f"a complex image is stored as (H, W, 2) real/imaginary channels, got shape {x.shape}")
    return jax.lax.complex(x[..., 0], x[..., 1])


def from_complex(z: jax.Array) -> jax.Array:
    """Complex ``(..., H, W)`` → ``(..., H, W, 2)`` real/imaginary channels."""
    return jnp.stack([jnp.real(z), jnp.imag(z)], axis=-1)


class Operator:
    """Base of every forward model ``y = A(x)``; subclasses are ``flax.struct.dataclass`` es with a static
    ``in_shape`` field and implement ``__call__``. Nonlinear models override :meth:`init_image`."""

    in_shape: tuple[int, ...]
    #: True when images are complex, stored as (real, imaginary) channels (see the module docstring).
    complex_image: bool = False
    #: True for :class:`LinearOperator` s, which have an adjoint.
    linear: bool = False

    def __call__(self, x: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs):
        """Every subclass's ``__call__`` checks the image shape first (at trace time: no cost in a compiled step), so
        an image of the wrong size is refused with its shape instead of giving plausible-looking measurements."""
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is None or getattr(call, "_checks_shape", False):
            return

        @functools.wraps(call)
        def checked_call(self, x, *args, **kw):
            if tuple(jnp.shape(x)) != tuple(self.in_shape):
                raise ValueError(f"{type(self).__name__} takes images of shape {tuple(self.in_shape)}, got "
                                 f"{tuple(jnp.shape(x))}")
            return call(self, x, *args, **kw)

        checked_call._checks_shape = True
        cls.__call__ = checked_call

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of ``A x`` for one image, found by abstract evaluation (no FLOPs)."""
        return tuple(jax.eval_shape(self, jax.ShapeDtypeStruct(self.in_shape, jnp.float32)).shape)

    def init_image(self, y: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        """An image of shape ``in_shape`` made from the measurements alone (see the module docstring)."""
        raise NotImplementedError(f"{type(self).__name__} does not define init_image")

    def vjp(self, x: jax.Array, v: jax.Array) -> jax.Array:
        """The vector–Jacobian product ``J_A(x)ᵀ v`` (``Re`` pairing for complex measurements), by reverse-mode
        autodiff; for a linear operator it is ``Aᵀ v`` at every ``x``."""
        _, pullback = jax.vjp(self.__call__, x)
        (g,) = pullback(jnp.conj(v) if jnp.iscomplexobj(v) else v)
        return g

    def view(self, x: jax.Array) -> jax.Array:
        """``x`` as users see it and metrics compare it: itself, or the magnitude ``(H, W, 1)`` of a complex image."""
        if self.complex_image:
            return jnp.abs(to_complex(x))[..., None]
        return x

    def display(self, y: jax.Array) -> jax.Array:
        """The measurements as an image in ``[0, 1]`` of the image's size (``degraded.png``, ``psnr_input``)."""
        return jnp.clip(self.view(self.init_image(y)), 0.0, 1.0)


class LinearOperator(Operator):
    """A linear forward model ``y = A x`` (the deepinv ``LinearPhysics`` / scico ``LinearOperator`` shape)."""

    linear: bool = True

    def adjoint(self, y: jax.Array) -> jax.Array:
        """``Aᵀ y`` (``Aᴴ y`` for complex measurements), the exact transpose of ``__call__``. JAX's transpose of a
        real-to-complex map pairs without conjugation, so the adjoint for the inner product ``Re⟨y, A x⟩`` is the
        transpose applied to ``conj(y)``."""
        real_dtype = jnp.zeros((), y.dtype).real.dtype
        transpose = jax.linear_transpose(self.__call__, jax.ShapeDtypeStruct(self.in_shape, real_dtype))
        (x,) = transpose(jnp.conj(y))
        return x

    def normal(self, x: jax.Array) -> jax.Array:
        """``Aᵀ A x``, the operator of the NTK filter recursion and of gradient steps on ``||A x - y||^2 / 2``."""
        return self.adjoint(self(x))

    def init_image(self, y: jax.Array) -> jax.Array:
        """``Aᵀ y``, the back-projection; operators whose adjoint is not a faithful picture override this."""
        return self.adjoint(y)


def check_image_shape(shape, what: str = "image") -> tuple[int, int, int]:
    """Validate an ``(H, W, C)`` shape and return it as a tuple of ints; raise ``ValueError`` saying what is wrong."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(f"{what} shape must be (height, width, channels) with positive sizes, got {shape}")
    return shape
