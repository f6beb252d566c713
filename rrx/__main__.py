from rrx.cli import main

main()
