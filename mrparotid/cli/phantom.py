"""``mrparotid phantom``: write a SYNTHETIC phantom cohort (three scanner profiles, DWI and ADC)."""

from __future__ import annotations

from mrparotid.errors import ConfigError


def cmd_phantom(args) -> int:
    from mrparotid.data.phantom import make_cohort
    from mrparotid.data.phantom_profiles import PROFILES

    if args.patients < 1:
        raise ConfigError(f"--patients is {args.patients}", fix="write at least one patient, e.g. -n 40")
    if not 1 <= args.centres <= len(PROFILES):
        raise ConfigError(f"--centres is {args.centres}",
                          fix=f"give 1 to {len(PROFILES)} scanner profiles (centres), e.g. --centres 3")
    manifest = make_cohort(args.out_dir, args.patients, seed=args.seed, progress=not args.quiet,
                           centres=args.centres, diffusion=not args.no_diffusion)
    print(f"wrote a SYNTHETIC phantom cohort of {args.patients} patients from {args.centres} "
          f"centre(s){'' if args.no_diffusion else ', with DWI and ADC'}: {manifest}")
    return 0
