from refmatch.cli import main

main()
