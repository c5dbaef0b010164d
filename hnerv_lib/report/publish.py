"""A study's outputs in a notebook: captioned, saved under the report directory, and displayed.

A notebook builds one :class:`Publisher` from its parameters, its study module and the study's results,
then shows the outputs section by section (``out.show("05_comparison")``) and ends with
``out.verdict()``. The captions get their provenance here: the profile from the parameters, the video,
split, teacher and epochs from the results.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from hnerv_lib.report.figures import caption, save_figure, save_table
from hnerv_lib.studies.outputs import Figure, Provenance, Table, Text, by_name


class Publisher:
    """Shows and saves the outputs of one study's results."""

    def __init__(self, params: Any, study: ModuleType, results: Any):
        self.params, self.study, self.results = params, study, results
        self.outputs = by_name(study.outputs(results))

    def caption(self, what: str, provenance: Optional[Provenance] = None) -> str:
        prov: Provenance = provenance or self.results.provenance
        return caption(what, video=prov.video, profile=self.params.profile, teacher=prov.teacher, split=prov.split,
                       epochs=prov.epochs)

    def show(self, *names: str) -> None:
        """Save (tables marked ``save``, every figure) and display the named outputs, in the study's order."""
        unknown = [n for n in names if n not in self.outputs]
        if unknown:
            raise KeyError(f"{self.study.__name__} has no output named {unknown}; it has {sorted(self.outputs)}")
        for item in (o for name in names for o in self.outputs[name]):
            if isinstance(item, Text):
                if item.text:  # an empty line is one the study had nothing to say in
                    print(item.text)
            elif isinstance(item, Table):
                if item.save:
                    save_table(item.rounded(), self.params.report_dir, item.name, self.caption(item.what, item.provenance))
                display(item.rounded())
            elif isinstance(item, Figure):
                fig = item.draw()
                save_figure(fig, self.params.report_dir, item.name, self.caption(item.what, item.provenance))
                display(fig)
                plt.close(fig)  # shown once: the inline backend would show it again at the end of the cell

    def verdict(self) -> str:
        """The study's generated verdict: printed, and saved as ``tables/<prefix>_verdict``."""
        text = self.study.verdict(self.results)
        name = f"{self.study.PREFIX}_verdict"
        save_table(pd.DataFrame({"verdict": [text]}), self.params.report_dir, name, self.caption(self.study.VERDICT_WHAT))
        print(text)
        return text
