from regionguard.cli import main

main()
