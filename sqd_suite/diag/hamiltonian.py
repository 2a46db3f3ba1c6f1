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

Tiles and panels (MPI, see distributed.py): a Hamiltonian may compute only the
tile ``alpha_range x beta_range`` of sigma. Its input then comes in *panels*,
the column blocks ``beta_bounds[k]:beta_bounds[k+1]`` of C over all alpha
rows: :meth:`SubspaceHamiltonian.apply_panel` adds one panel's contribution,
with the beta links restricted to that panel. Terms without a beta excitation
(the diagonal, alpha doubles, alpha single x beta diagonal) live on the
output's own panel, applied first.

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
from sqd_suite.diag.distributed import alpha_work_weights, matvec_by_panels, resolve_panels
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
class _BetaLinks:
    """Beta tables in pull form for output columns b0:b1 reading input columns c0:c1 (both local)."""

    bs_ptr: np.ndarray  # (b1 - b0 + 1,) single links of each output column
    bs_col: np.ndarray  # int32 input column - c0
    bs_code: np.ndarray  # int32 2 * pair(r, s) + (sign < 0)
    bs_h: np.ndarray  # float64 sign * same-spin element
    bd_ptr: np.ndarray  # (b1 - b0 + 1,) double links
    bd_col: np.ndarray  # int32 input column - c0
    bd_val: np.ndarray  # float64

    @property
    def n_singles(self) -> int:
        return int(self.bs_ptr[-1])

    @property
    def n_links(self) -> int:
        return int(self.bs_ptr[-1] + self.bd_ptr[-1])

    def restrict(self, b0: int, b1: int, c0: int, c1: int) -> _BetaLinks:
        """The links of output columns b0:b1 into input columns c0:c1 (of a table over all columns)."""
        if (b0, c0) == (0, 0) and b1 == c1 == self.bs_ptr.size - 1:
            return self
        bs = _restrict_csr(self.bs_ptr, self.bs_col, b0, b1, c0, c1)
        bd = _restrict_csr(self.bd_ptr, self.bd_col, b0, b1, c0, c1)
        return _BetaLinks(
            bs_ptr=bs[0], bs_col=bs[1], bs_code=self.bs_code[bs[2]], bs_h=self.bs_h[bs[2]],
            bd_ptr=bd[0], bd_col=bd[1], bd_val=self.bd_val[bd[2]],
        )  # fmt: skip


def _restrict_csr(
    indptr: np.ndarray, col: np.ndarray, r0: int, r1: int, c0: int, c1: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows r0:r1 of a CSR pattern with columns in c0:c1: (indptr, col - c0, positions of the kept links)."""
    lo, hi = int(indptr[r0]), int(indptr[r1])
    cols = col[lo:hi]
    keep = (cols >= c0) & (cols < c1)
    rows = np.repeat(np.arange(r1 - r0), np.diff(indptr[r0 : r1 + 1]))
    new_ptr = np.zeros(r1 - r0 + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep], minlength=r1 - r0), out=new_ptr[1:])
    pos = lo + np.flatnonzero(keep)
    return new_ptr, np.ascontiguousarray(cols[keep] - c0, dtype=np.int32), pos


@dataclass(frozen=True, eq=False)
class SubspaceHamiltonian:
    """H_el (no core energy) restricted to alpha_strings x beta_strings, applied matrix-free.

    Build with :meth:`from_integrals`. ``matvec`` reads the full (n_a, n_b)
    vector (only the rows listed by :meth:`needed_alpha_rows` matter) and
    returns the tile ``alpha_range x beta_range`` of H_el c (all of it by
    default); :meth:`apply_panel` does the same one column panel at a time.
    Integrals must be real with the 8-fold permutational symmetry of real
    orbitals.
    """

    norb: int
    nelec: tuple[int, int]
    alpha_strings: np.ndarray
    beta_strings: np.ndarray
    alpha_range: tuple[int, int]
    beta_range: tuple[int, int]
    beta_bounds: np.ndarray  # column panels of the input, beta_range one of them
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
    _beta_all: _BetaLinks  # every column, global indices
    _panels: tuple[_BetaLinks, ...]  # output columns beta_range, one entry per input panel
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
        beta_range: tuple[int, int] | None = None,
        beta_bounds: np.ndarray | None = None,
        block_size: int = DEFAULT_BLOCK,
    ) -> SubspaceHamiltonian:
        """Build the excitation tables and integral slices for one string set.

        ``alpha_range`` = (a0, a1) and ``beta_range`` = (b0, b1) restrict the
        output to one tile (MPI); ``beta_bounds`` are the input's column
        panels (default: the cuts at ``beta_range``). ``block_size`` is K,
        the number of alpha rows processed together.
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
        beta_all = _BetaLinks(
            bs_ptr=b_singles.indptr,
            bs_col=b_singles.target,
            bs_code=(2 * pidx[b_singles.p, b_singles.q] + (b_singles.sign < 0)).astype(np.int32),
            bs_h=b_singles.sign * b_f,
            bd_ptr=b_doubles.indptr,
            bd_col=b_doubles.target,
            bd_val=_k.double_values(b_doubles.p, b_doubles.q, b_doubles.r, b_doubles.s, b_doubles.sign, h2),
        )

        ham = cls(
            norb=norb,
            nelec=(na, nb),
            alpha_strings=alpha,
            beta_strings=beta,
            alpha_range=(0, 0),
            beta_range=(0, 0),
            beta_bounds=np.zeros(1, dtype=np.int64),
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
            _beta_all=beta_all,
            _panels=(),
            _h1=h1,
            _h2=h2,
            _alpha=_EMPTY_ALPHA,
        )
        return ham.with_tile(alpha_range, beta_range, beta_bounds=beta_bounds)

    def with_tile(
        self,
        alpha_range: tuple[int, int] | None = None,
        beta_range: tuple[int, int] | None = None,
        *,
        beta_bounds: np.ndarray | None = None,
    ) -> SubspaceHamiltonian:
        """The same Hamiltonian computing only the tile ``alpha_range x beta_range`` (None: all rows / columns).

        Shares the string tables; ``beta_bounds`` as in :meth:`from_integrals`.
        """
        n_a, n_b = self.shape
        a0, a1 = (0, n_a) if alpha_range is None else (int(alpha_range[0]), int(alpha_range[1]))
        if not 0 <= a0 <= a1 <= n_a:
            raise ValueError(f"alpha_range {alpha_range} outside 0..{n_a}")
        bounds, own = resolve_panels(n_b, beta_range, beta_bounds)
        b0, b1 = int(bounds[own]), int(bounds[own + 1])
        rows = self._alpha if (a0, a1) == self.alpha_range else self._alpha_rows(a0, a1)
        panels = tuple(
            self._beta_all.restrict(b0, b1, int(bounds[k]), int(bounds[k + 1])) for k in range(bounds.size - 1)
        )
        return replace(self, alpha_range=(a0, a1), beta_range=(b0, b1), beta_bounds=bounds, _alpha=rows,
                       _panels=panels)  # fmt: skip

    def _alpha_rows(self, a0: int, a1: int) -> _AlphaRows:
        """Kernel tables of the output rows a0:a1."""
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
        return _AlphaRows(
            doubles=doubles,
            ad_val=ad_val,
            pair_ptr=pair_ptr,
            l_ia=np.ascontiguousarray(ia[order], dtype=np.int32),
            l_ja=np.ascontiguousarray(s.target[lo:hi][order]),
            l_sign=s.sign[lo:hi][order].astype(np.float64),
            l_f=np.ascontiguousarray(f[order]),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.alpha_strings.size, self.beta_strings.size)

    @property
    def alpha_doubles(self) -> DoubleExcitations:
        """Alpha double excitations of the rows in ``alpha_range``."""
        return self._alpha.doubles

    @property
    def tile_shape(self) -> tuple[int, int]:
        """Shape of the output tile."""
        return (self.alpha_range[1] - self.alpha_range[0], self.beta_range[1] - self.beta_range[0])

    @property
    def own_panel(self) -> int:
        """Index of the panel holding the output columns (applied first)."""
        return int(np.searchsorted(self.beta_bounds, self.beta_range[0], side="right")) - 1

    def matvec(self, c: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The tile alpha_range x beta_range of H_el c for the full (n_a, n_b) vector c."""
        c = np.ascontiguousarray(c, dtype=np.float64)
        if c.shape != self.shape:
            raise ValueError(f"c has shape {c.shape}, expected {self.shape}")
        out = self._check_out(out)
        if np.may_share_memory(out, c):
            raise ValueError("out must not overlap c")
        return matvec_by_panels(self, c, out)

    def apply_panel(self, panel: np.ndarray, k: int, out: np.ndarray) -> np.ndarray:
        """Add panel ``k``'s contribution to the tile ``out``; the own panel (first!) assigns.

        ``panel`` is (n_a, width of panel k): columns ``beta_bounds[k]:beta_bounds[k+1]``
        of C, where the rows ``needed_alpha_rows(k)`` must be filled.
        """
        a0, a1 = self.alpha_range
        b0, b1 = self.beta_range
        width = int(self.beta_bounds[k + 1] - self.beta_bounds[k])
        if panel.shape != (self.shape[0], width) or panel.dtype != np.float64 or not panel.flags.c_contiguous:
            raise ValueError(f"panel {k} must be a C-contiguous float64 array of shape {(self.shape[0], width)}")
        same = k == self.own_panel
        links = self._panels[k]
        if a1 == a0 or b1 == b0 or (not same and links.n_links == 0):
            return out
        al = self._alpha
        ad = al.doubles
        _k.sigma_rows(
            panel, out, a0, self._chunk_bounds(numba.get_num_threads()), self.block_size,
            self._occa, self._ea, ad.indptr, ad.target, al.ad_val,
            al.pair_ptr, al.l_ia, al.l_ja, al.l_sign, al.l_f,
            self._occb[b0:b1], self._occb_jdiag[b0:b1], self._eb[b0:b1],
            links.bs_ptr, links.bs_col, links.bs_code, links.bs_h, links.bd_ptr, links.bd_col, links.bd_val,
            self._eri_pair, self._jpair, same,
        )  # fmt: skip
        return out

    def _check_out(self, out: np.ndarray | None) -> np.ndarray:
        shape = self.tile_shape
        if out is None:
            return np.empty(shape)
        if out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}")
        return out

    def diagonal(self) -> np.ndarray:
        """The tile alpha_range x beta_range of diag(H_el)."""
        a0, a1 = self.alpha_range
        b0, b1 = self.beta_range
        occa = occupation_matrix(self.alpha_strings[a0:a1], self.norb)
        occb = occupation_matrix(self.beta_strings[b0:b1], self.norb)
        return self._ea[a0:a1, None] + self._eb[None, b0:b1] + (occa @ self._jdiag) @ occb.T

    def needed_alpha_rows(self, panel: int | None = None) -> np.ndarray:
        """Sorted global alpha indices whose rows of panel ``panel`` (None: of any panel) the tile reads.

        The own panel reads the tile's rows and their single and double
        excitations; another panel the tile's rows when it holds beta links
        of the tile, and their single excitations when it holds beta singles.
        """
        if panel is None:
            parts = [self.needed_alpha_rows(k) for k in range(self.beta_bounds.size - 1)]
            return np.unique(np.concatenate(parts))
        a0, a1 = self.alpha_range
        s = self.alpha_singles
        links = self._panels[panel]
        same = panel == self.own_panel
        parts = [np.zeros(0, dtype=np.int64)]
        if same or links.n_links:
            parts.append(np.arange(a0, a1, dtype=np.int64))
        if same or links.n_singles:
            parts.append(s.target[s.indptr[a0] : s.indptr[a1]].astype(np.int64))
        if same:
            parts.append(self._alpha.doubles.target.astype(np.int64))
        return np.unique(np.concatenate(parts))

    def alpha_weights(self) -> np.ndarray:
        """Useful multiply-adds of each alpha row (all n_a rows); sums over a row block give its W.

        s_a(a) * sum_b s_b + n_b * (s_a(a) + d_a(a)) + sum_b (s_b + d_b). Cumulative
        sums of this split rows into blocks of equal work.
        """
        return alpha_work_weights(self.alpha_strings, self.beta_strings, self.norb, diagonal=False)

    def work_per_sigma(self) -> int:
        """Useful multiply-adds W (diag-design.md) of one matvec of the tile."""
        return int(round(self._row_work().sum()))

    def _row_work(self) -> np.ndarray:
        """Useful multiply-adds of each output row of the tile: s_a S_b + |B| (s_a + d_a) + (S_b + D_b)."""
        a0, a1 = self.alpha_range
        b0, b1 = self.beta_range
        s_a = self.alpha_singles.counts()[a0:a1].astype(np.float64)
        d_a = self._alpha.doubles.counts().astype(np.float64)
        s_b = float(self.beta_singles.indptr[b1] - self.beta_singles.indptr[b0])
        d_b = float(self.beta_doubles.indptr[b1] - self.beta_doubles.indptr[b0])
        return s_a * s_b + (b1 - b0) * (s_a + d_a) + (s_b + d_b)

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
                elif isinstance(v, (SingleExcitations, DoubleExcitations, _AlphaRows, _BetaLinks)):
                    add(v)
                elif isinstance(v, tuple):
                    for x in v:
                        if isinstance(x, _BetaLinks):
                            add(x)

        add(self)
        return total - self._h2.nbytes

    def scratch_nbytes(self, n_threads: int | None = None) -> int:
        """Per-matvec scratch: an (input width, K) and an (output width, K) block and small tables per thread."""
        n_threads = numba.get_num_threads() if n_threads is None else n_threads
        npair = self._eri_pair.shape[0]
        width = int(np.diff(self.beta_bounds).max()) + self.tile_shape[1]
        per = 8 * (width * self.block_size + 2 * npair * self.block_size + 2 * npair)
        return n_threads * per

    def _chunk_bounds(self, n_threads: int) -> np.ndarray:
        """Split alpha_range into at most n_threads contiguous blocks of about equal work."""
        a0, a1 = self.alpha_range
        nrow = a1 - a0
        nchunk = max(1, min(n_threads, nrow))
        if nchunk == 1:
            return np.array([a0, a1], dtype=np.int64)
        cum = np.concatenate([[0.0], np.cumsum(self._row_work())])
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
