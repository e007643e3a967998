"""What every phase and stage shares: the params schema (`config`), the stage entry point and
its one-line errors (`stage`, `errors`), whole-file writes (`atomicfiles`, `fileio`), the check of
pipeline files against `dvc.lock` (`integrity`) and the CPU settings that keep numbers
identical (`cpu`). It imports no phase; DVC's own processes load `atomicfiles`, so this
package loads nothing at import."""
