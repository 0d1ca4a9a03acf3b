from dcsim.cli import main

main()
