"""`dreamcam render --workers N / --cluster ADDRESS`: one render split into chunks over Ray.

- options: `render`'s options for it (--workers, --cluster, --shared-path, --chunk-frames);
- job: what the render asks for, as data (the chunks' DreamRecipe, SplitOptions);
- plan: which frames each chunk dreams and writes (seams at scene cuts, warm-up, crossfade), seeds;
- scan: one pass over the input on the driver (frame count, scene cuts, motion, per-frame looks);
- chunk: what a Ray worker runs for one chunk (read its frames, dream them, hand them back);
- seams: how two chunks' renders of the same frames are blended into one;
- runtime: starting or joining Ray, the chunk task's resources, the shared progress counter;
- split: the driver (submit, retry lost chunks, crossfade the seams, write one file with the sound).

Ray is an optional extra (`pip install 'dreamcam[cluster]'`): nothing here imports it at module level
except runtime, and runtime only when a split render starts.
"""
