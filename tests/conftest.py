import os

import pytest

from hnerv_lib.utils.precision import PROBE_DIR_ENV


@pytest.fixture(scope="session", autouse=True)
def _probe_dir(tmp_path_factory):
    """The CPU probe's file in this session's temp folder, not the user's cache: the suite stays hermetic,
    and its subprocesses (local jobs, papermill kernels) inherit the variable, so they read the same file."""
    os.environ[PROBE_DIR_ENV] = str(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """One frame/target cache for the whole session: the smoke teacher's targets are computed once."""
    return tmp_path_factory.mktemp("cache")


class FigureCheck:
    """What a figure must do to be read without its caption (issue 35): maps with colourbars on one
    scale, legends outside the data, y axes that say their unit."""

    @staticmethod
    def maps(fig):
        """Every single-channel image or heatmap of the figure's axes (colourbars themselves left out)."""
        from matplotlib.collections import QuadMesh
        from matplotlib.image import AxesImage

        return [a for ax in fig.axes if not hasattr(ax, "_colorbar")
                for a in [*ax.images, *ax.collections]
                if isinstance(a, (AxesImage, QuadMesh)) and a.get_array() is not None and a.get_array().ndim <= 2]

    def one_scale_with_colourbars(self, fig, expect_maps=1):
        """Every map has a colourbar and all share one (vmin, vmax); returns it."""
        maps = self.maps(fig)
        assert len(maps) >= expect_maps, f"expected at least {expect_maps} maps, found {len(maps)}"
        assert all(a.colorbar is not None for a in maps), "a map has no colourbar"
        scales = {tuple(round(float(v), 6) for v in a.get_clim()) for a in maps}
        assert len(scales) == 1, f"maps on different scales: {sorted(scales)}"
        return scales.pop()

    @staticmethod
    def legends_outside(fig):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                box, area = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
                overlap = min(box.x1, area.x1) - max(box.x0, area.x0)
                assert overlap <= 1, f"the legend of '{ax.get_title()}' covers its axes by {overlap:.0f} px"

    @staticmethod
    def units_on_y(fig, needed=1):
        labelled = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
        assert len(labelled) >= needed, f"only {len(labelled)} y axes are labelled"


@pytest.fixture
def figure_check():
    return FigureCheck()


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures a test draws are closed after it (pyplot keeps every open figure alive)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
