"""Matrix-free electronic Hamiltonian on a product space of alpha x beta strings.

With the CI vector held as an (n_a, n_b) matrix C,

    sigma = H_a C + C H_b^T + sum_{pq,rs} (pq|rs) E^a_pq C (E^b_rs)^T

where H_a (H_b) holds the one-electron and same-spin two-electron elements
between in-set strings (Slater-Condon, so excitations through out-of-set
strings are exact) and the last sum runs over in-set single links including
the diagonal ``E_pp = n_p``. The implementation splits it into

* diagonal: E_a(a) + E_b(b) + sum_{i in a, j in b} (ii|jj);
* alpha single (pq) x beta: sa [(F_pq + sum_{j in b} (pq|jj)) C[ja, b] + sum_rs sb (pq|rs) C[ja, jb]],
  bucketed by the unordered pair {p, q} (8-fold symmetric real integrals);
* beta single x alpha diagonal + beta same-spin, K consecutive alpha rows at a time;
* alpha doubles: contiguous row updates.

Determinants are ordered |alpha>|beta> as in PySCF; E^b is even in fermion
operators, so beta excitations pick up no alpha parity.

Cost and memory: one matvec does about W = sum_a s_a * sum_b s_b + n_b sum_a
(s_a + d_a) + n_a sum_b (s_b + d_b) multiply-adds (``work_per_sigma``); tables
are per string (``nbytes``: ~5 B/det at D = 1e8 for N2/cc-pVDZ), scratch is two
(n_b, K) blocks per thread, plus the caller's input and output vectors.
Threads (numba ``prange``) take contiguous blocks of output rows of equal
work; with many threads on few alpha rows the per-pair buckets shrink below K
and the rate per core drops (more MPI ranks or fewer threads then pay off).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numba
import numpy as np

from sqd_suite.diag import _sigma_kernels as _k
from sqd_suite.diag.strings import occupation_lists, occupation_matrix, validate_strings
from sqd_suite.diag.tables import DoubleExcitations, SingleExcitations, build_doubles, build_singles

DEFAULT_BLOCK = 32


@dataclass(frozen=True, eq=False)
class _AlphaRows:
    """Kernel tables of the alpha rows a0:a1 (output side)."""

    doubles: DoubleExcitations
    ad_val: np.ndarray  # (nnz_d,) H_aa element of each double link
    pair_ptr: np.ndarray  # (npair + 1,) alpha single links of rows a0:a1 sorted by (pair, ia)
    l_ia: np.ndarray  # int32 output row (global)
    l_ja: np.ndarray  # int32 input row (global)
    l_sign: np.ndarray  # float64
    l_f: np.ndarray  # float64, same-spin Fock-like element (unsigned)


@dataclass(frozen=True, eq=False)
class SubspaceHamiltonian:
    """H_el (no core energy) restricted to alpha_strings x beta_strings, applied matrix-free.

    Build with :meth:`from_integrals`. ``matvec`` reads the full (n_a, n_b)
    vector (only the rows listed by :meth:`needed_alpha_rows` matter) and
    returns rows ``alpha_range`` of H_el c. Integrals must be real with the
    8-fold permutational symmetry of real orbitals.
    """

    norb: int
    nelec: tuple[int, int]
    alpha_strings: np.ndarray
    beta_strings: np.ndarray
    alpha_range: tuple[int, int]
    alpha_singles: SingleExcitations
    beta_singles: SingleExcitations
    beta_doubles: DoubleExcitations
    block_size: int
    _occa: np.ndarray
    _occb: np.ndarray
    _ea: np.ndarray
    _eb: np.ndarray
    _jdiag: np.ndarray  # (ii|jj)
    _occb_jdiag: np.ndarray  # (n_b, norb): sum_{j in occ(b)} (ii|jj)
    _eri_pair: np.ndarray  # (npair, npair): (pq|rs) over unordered pairs p > q, r > s
    _jpair: np.ndarray  # (npair, norb): (pq|jj)
    _bs_col: np.ndarray
    _bs_code: np.ndarray
    _bs_h: np.ndarray
    _bd_val: np.ndarray
    _h1: np.ndarray
    _h2: np.ndarray
    _alpha: _AlphaRows

    @classmethod
    def from_integrals(
        cls,
        h1: np.ndarray,
        h2: np.ndarray,
        norb: int,
        nelec: tuple[int, int],
        alpha_strings: np.ndarray,
        beta_strings: np.ndarray,
        *,
        alpha_range: tuple[int, int] | None = None,
        block_size: int = DEFAULT_BLOCK,
    ) -> SubspaceHamiltonian:
        """Build the excitation tables and integral slices for one string set.

        ``alpha_range`` = (a0, a1) restricts the output rows (MPI row block);
        ``block_size`` is K, the number of alpha rows processed together.
        """
        norb = int(norb)
        na, nb = int(nelec[0]), int(nelec[1])
        h1, h2 = _check_integrals(h1, h2, norb)
        alpha = validate_strings(alpha_strings, norb, na, name="alpha_strings")
        beta = validate_strings(beta_strings, norb, nb, name="beta_strings")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        occa = occupation_lists(alpha, norb, na)
        occb = occupation_lists(beta, norb, nb)
        jdiag = np.ascontiguousarray(np.einsum("iijj->ij", h2))
        kdiag = np.ascontiguousarray(np.einsum("ijji->ij", h2))
        pidx, hi, lo = _pair_index(norb)
        eri_pair = np.ascontiguousarray(h2[hi[:, None], lo[:, None], hi[None, :], lo[None, :]])
        jpair = np.ascontiguousarray(h2[hi, lo][:, np.arange(norb), np.arange(norb)])

        a_singles = build_singles(alpha, norb, na)
        b_singles = build_singles(beta, norb, nb)
        b_doubles = build_doubles(beta, norb, nb)

        # Beta tables in pull form: row ib's links read c[:, jb]; the graph is symmetric.
        b_f = _k.single_fock_values(b_singles.indptr, b_singles.p, b_singles.q, occb, h1, h2)
        bs_code = (2 * pidx[b_singles.p, b_singles.q] + (b_singles.sign < 0)).astype(np.int32)
        bs_h = b_singles.sign * b_f
        bd_val = _k.double_values(b_doubles.p, b_doubles.q, b_doubles.r, b_doubles.s, b_doubles.sign, h2)

        ham = cls(
            norb=norb,
            nelec=(na, nb),
            alpha_strings=alpha,
            beta_strings=beta,
            alpha_range=(0, 0),
            alpha_singles=a_singles,
            beta_singles=b_singles,
            beta_doubles=b_doubles,
            block_size=int(block_size),
            _occa=occa,
            _occb=occb,
            _ea=_k.string_energies(occa, h1, jdiag, kdiag),
            _eb=_k.string_energies(occb, h1, jdiag, kdiag),
            _jdiag=jdiag,
            _occb_jdiag=np.ascontiguousarray(occupation_matrix(beta, norb) @ jdiag),
            _eri_pair=eri_pair,
            _jpair=jpair,
            _bs_col=b_singles.target,
            _bs_code=bs_code,
            _bs_h=bs_h,
            _bd_val=bd_val,
            _h1=h1,
            _h2=h2,
            _alpha=_EMPTY_ALPHA,
        )
        return ham.with_alpha_range(alpha_range)

    def with_alpha_range(self, alpha_range: tuple[int, int] | None) -> SubspaceHamiltonian:
        """The same Hamiltonian computing only rows ``alpha_range`` (shares the beta tables)."""
        n_a = self.alpha_strings.size
        a0, a1 = (0, n_a) if alpha_range is None else (int(alpha_range[0]), int(alpha_range[1]))
        if not 0 <= a0 <= a1 <= n_a:
            raise ValueError(f"alpha_range {alpha_range} outside 0..{n_a}")
        if (a0, a1) == self.alpha_range and self._alpha is not _EMPTY_ALPHA:
            return self
        s = self.alpha_singles
        doubles = build_doubles(self.alpha_strings, self.norb, self.nelec[0], row_range=(a0, a1))
        ad_val = _k.double_values(doubles.p, doubles.q, doubles.r, doubles.s, doubles.sign, self._h2)
        lo, hi = int(s.indptr[a0]), int(s.indptr[a1])
        # Row ia's link a+_p a_q |ia> = sign |ja> is the pull link ja -> ia with E_qp; pair {p, q} is the same.
        pidx, _, _ = _pair_index(self.norb)
        ia = s.sources()[lo:hi]
        pair = pidx[s.p[lo:hi], s.q[lo:hi]]
        order = np.lexsort((ia, pair))
        f = _k.single_fock_values(
            s.indptr[a0 : a1 + 1] - lo, s.p[lo:hi], s.q[lo:hi], self._occa[a0:a1], self._h1, self._h2
        )
        npair = self._eri_pair.shape[0]
        pair_ptr = np.zeros(npair + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair, minlength=npair), out=pair_ptr[1:])
        rows = _AlphaRows(
            doubles=doubles,
            ad_val=ad_val,
            pair_ptr=pair_ptr,
            l_ia=np.ascontiguousarray(ia[order], dtype=np.int32),
            l_ja=np.ascontiguousarray(s.target[lo:hi][order]),
            l_sign=s.sign[lo:hi][order].astype(np.float64),
            l_f=np.ascontiguousarray(f[order]),
        )
        return replace(self, alpha_range=(a0, a1), _alpha=rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.alpha_strings.size, self.beta_strings.size)

    @property
    def alpha_doubles(self) -> DoubleExcitations:
        """Alpha double excitations of the rows in ``alpha_range``."""
        return self._alpha.doubles

    def matvec(self, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Rows alpha_range of H_el c for the full (n_a, n_b) vector c."""
        c = np.ascontiguousarray(c, dtype=np.float64)
        if c.shape != self.shape:
            raise ValueError(f"c has shape {c.shape}, expected {self.shape}")
        a0, a1 = self.alpha_range
        n_b = self.shape[1]
        if out is None:
            out = np.empty((a1 - a0, n_b))
        elif out.shape != (a1 - a0, n_b) or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float64 array of shape {(a1 - a0, n_b)}")
        if np.may_share_memory(out, c):
            raise ValueError("out must not overlap c")
        if a1 == a0:
            return out
        al = self._alpha
        ad = al.doubles
        _k.sigma_rows(
            c, out, a0, self._chunk_bounds(numba.get_num_threads()), self.block_size,
            self._occa, self._ea, ad.indptr, ad.target, al.ad_val,
            al.pair_ptr, al.l_ia, al.l_ja, al.l_sign, al.l_f,
            self._occb, self._occb_jdiag, self._eb,
            self.beta_singles.indptr, self._bs_col, self._bs_code, self._bs_h,
            self.beta_doubles.indptr, self.beta_doubles.target, self._bd_val,
            self._eri_pair, self._jpair,
        )  # fmt: skip
        return out

    def diagonal(self) -> np.ndarray:
        """Rows alpha_range of diag(H_el), shape (a1 - a0, n_b)."""
        a0, a1 = self.alpha_range
        occa = occupation_matrix(self.alpha_strings[a0:a1], self.norb)
        occb = occupation_matrix(self.beta_strings, self.norb)
        return self._ea[a0:a1, None] + self._eb[None, :] + (occa @ self._jdiag) @ occb.T

    def needed_alpha_rows(self) -> np.ndarray:
        """Sorted global alpha indices whose rows of c the matvec reads."""
        a0, a1 = self.alpha_range
        s = self.alpha_singles
        parts = [
            np.arange(a0, a1, dtype=np.int64),
            s.target[s.indptr[a0] : s.indptr[a1]].astype(np.int64),
            self._alpha.doubles.target.astype(np.int64),
        ]
        return np.unique(np.concatenate(parts))

    def alpha_weights(self) -> np.ndarray:
        """Useful multiply-adds of each alpha row (all n_a rows); sums over a row block give its W.

        s_a(a) * sum_b s_b + n_b * (s_a(a) + d_a(a)) + sum_b (s_b + d_b). Cumulative
        sums of this split rows into blocks of equal work.
        """
        from sqd_suite.diag.distributed import alpha_work_weights

        return alpha_work_weights(self.alpha_strings, self.beta_strings, self.norb, diagonal=False)

    def work_per_sigma(self) -> int:
        """Useful multiply-adds W (diag-design.md) of one matvec over the rows in ``alpha_range``."""
        a0, a1 = self.alpha_range
        s_a = self.alpha_singles.counts()[a0:a1]
        d_a = self._alpha.doubles.counts()
        s_b_tot = int(self.beta_singles.nnz)
        bb = s_b_tot + int(self.beta_doubles.nnz)
        n_b = self.shape[1]
        return int(s_a.sum()) * s_b_tot + n_b * int(s_a.sum() + d_a.sum()) + (a1 - a0) * bb

    def nbytes(self) -> int:
        """Bytes of the tables and integral slices (per string; the 4-index h2 held by reference is not counted)."""
        total = 0
        seen: set[int] = set()

        def add(obj: object) -> None:
            nonlocal total
            for v in vars(obj).values():
                if isinstance(v, np.ndarray) and id(v) not in seen:
                    seen.add(id(v))
                    total += v.nbytes
                elif isinstance(v, (SingleExcitations, DoubleExcitations, _AlphaRows)):
                    add(v)

        add(self)
        return total - self._h2.nbytes

    def scratch_nbytes(self, n_threads: int | None = None) -> int:
        """Per-matvec scratch: two (n_b, K) blocks and small tables per thread."""
        n_threads = numba.get_num_threads() if n_threads is None else n_threads
        npair = self._eri_pair.shape[0]
        per = 8 * (2 * self.shape[1] * self.block_size + 2 * npair * self.block_size + 2 * npair)
        return n_threads * per

    def _chunk_bounds(self, n_threads: int) -> np.ndarray:
        """Split alpha_range into at most n_threads contiguous blocks of about equal work."""
        a0, a1 = self.alpha_range
        nrow = a1 - a0
        nchunk = max(1, min(n_threads, nrow))
        if nchunk == 1:
            return np.array([a0, a1], dtype=np.int64)
        s_a = self.alpha_singles.counts()[a0:a1].astype(np.float64)
        d_a = self._alpha.doubles.counts().astype(np.float64)
        n_b = self.shape[1]
        w = s_a * self.beta_singles.nnz + n_b * (s_a + d_a) + self.beta_singles.nnz + self.beta_doubles.nnz
        cum = np.concatenate([[0.0], np.cumsum(w)])
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, nchunk) / nchunk)
        bounds = np.unique(np.clip(np.concatenate([[0], cuts, [nrow]]), 0, nrow))
        return (bounds + a0).astype(np.int64)


def sigma(
    h1: np.ndarray,
    h2: np.ndarray,
    norb: int,
    nelec: tuple[int, int],
    alpha_strings: np.ndarray,
    beta_strings: np.ndarray,
    c: np.ndarray,
) -> np.ndarray:
    """H_el c (no core energy) on the product space; c has shape (n_a, n_b)."""
    ham = SubspaceHamiltonian.from_integrals(h1, h2, norb, nelec, alpha_strings, beta_strings)
    return ham.matvec(np.asarray(c).reshape(ham.shape))


def _check_integrals(h1: np.ndarray, h2: np.ndarray, norb: int) -> tuple[np.ndarray, np.ndarray]:
    h1 = np.ascontiguousarray(h1, dtype=np.float64)
    h2 = np.ascontiguousarray(h2, dtype=np.float64)
    if h1.shape != (norb, norb):
        raise ValueError(f"h1 has shape {h1.shape}, expected {(norb, norb)}")
    if h2.shape != (norb,) * 4:
        raise ValueError(f"h2 has shape {h2.shape}, expected {(norb,) * 4} (full 4-index (pq|rs))")
    scale = max(1.0, float(np.abs(h2).max(initial=0.0)))
    tol = 1e-8 * scale
    if not np.allclose(h1, h1.T, atol=1e-8 * max(1.0, float(np.abs(h1).max(initial=0.0)))):
        raise ValueError("h1 must be symmetric (real orbitals)")
    for perm in ((1, 0, 2, 3), (2, 3, 0, 1), (0, 1, 3, 2)):
        if not np.allclose(h2, h2.transpose(perm), atol=tol):
            raise ValueError("h2 must have the 8-fold symmetry of real orbitals (pq|rs) = (qp|rs) = (rs|pq)")
    return h1, h2


def _pair_index(norb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the unordered pair {p, q}, p != q (p > q: p*(p-1)/2 + q), and its (p, q) lists."""
    hi, lo = np.tril_indices(norb, -1)
    pidx = np.full((norb, norb), -1, dtype=np.int64)
    pidx[hi, lo] = np.arange(hi.size)
    pidx[lo, hi] = np.arange(hi.size)
    return pidx, hi, lo


_I32 = np.empty(0, dtype=np.int32)
_EMPTY_ALPHA = _AlphaRows(
    doubles=DoubleExcitations(
        row_range=(0, 0), indptr=np.zeros(1, dtype=np.int64), target=_I32, p=_I32, r=_I32, q=_I32, s=_I32,
        sign=np.empty(0, dtype=np.int8),
    ),
    ad_val=np.empty(0),
    pair_ptr=np.zeros(1, dtype=np.int64),
    l_ia=_I32,
    l_ja=_I32,
    l_sign=np.empty(0),
    l_f=np.empty(0),
)  # fmt: skip
